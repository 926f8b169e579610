package dynamodb

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/amplify"
	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// ExportExtractor reads DynamoDB exports to S3 in the DYNAMODB_JSON format,
// as AWS writes them under s3://BUCKET/PREFIX/AWSDynamoDB/EXPORT_ID/:
//
//	manifest-summary.json   one JSON object: tableArn, itemCount,
//	                        outputFormat ("DYNAMODB_JSON"), manifestFilesS3Key
//	manifest-files.json     one JSON object a line: dataFileS3Key, itemCount
//	data/*.json.gz          gzipped, one item a line: {"Item": {"id": {"S": "a"}, ...}}
//
// Each export is a stream named after its table (the last part of
// tableArn); its data files, in the manifest's order, are split into at
// most the planned number of partitions. A record's cursor is its file's
// position in the manifest and its line. The export does not name the
// table's key attributes: they are given in the folder's address
// (?keys=PK or ?keys=PK,SK), or read with DescribeTable from DynamoDB (free).
//
// Records are the scan's (see the package comment), so a table read from
// an export lands as a scan would land it. A line that is not an item is,
// to a reader that asks for such records (extractors.WithSkips: a run), a
// reject (record.Skip with Reject) whose reason names the data file and
// the line, and whose key is the item's when the line names its key
// attributes, else "TABLE/(line N of FILE)"; its fields are the file's
// address and the line's number, never the line's text. Other readers get
// an error naming the file and the line.
type ExportExtractor struct {
	s3       *minio.Client
	ddb      *Extractor // for DescribeTable when keys are not given
	mu       sync.Mutex // guards the exports' loading
	exports  []*export
	keepDel  bool
	policy   retry.Policy
	settings map[string]string
	tombstones
}

type export struct {
	spec   string // as given
	bucket string
	dir    string // the export's folder, no trailing slash
	keys   [2]string
	table  string
	items  int64
	files  []string // data file keys, in the manifest's order
}

var (
	_ extractors.Extractor     = (*ExportExtractor)(nil)
	_ extractors.Counter       = (*ExportExtractor)(nil)
	_ extractors.ReadMeter     = (*ExportExtractor)(nil)
	_ extractors.ReadEstimator = (*ExportExtractor)(nil)
	_ extractors.Unordered     = (*ExportExtractor)(nil)
	_ extractors.Configured    = (*ExportExtractor)(nil)
)

// CheckChanges (extractors.ChangeChecker) refuses sync: an export is a
// snapshot that never changes, so polling it would follow nothing while
// the tables move on.
func (e *ExportExtractor) CheckChanges(context.Context) error {
	return failure.Mark(errors.New("sync cannot follow a DynamoDB export (--dynamodb-export): it is a snapshot that never changes; "+
		"sync the tables themselves, without --dynamodb-export (the copy then scans them, and their DynamoDB Streams are followed), "+
		"or migrate from the export and sync without it afterwards (the catch-up compares the tables with the target)"), failure.Permanent)
}

// NewExport builds an extractor of the exports --dynamodb-export names,
// read from the S3 endpoint --amplify-s3-endpoint (AWS's for the region by
// default) with the AWS credential chain. It contacts nothing.
func NewExport(ctx context.Context, cfg plugin.Config) (*ExportExtractor, error) {
	c, err := commonConfig(cfg)
	if err != nil {
		return nil, err
	}
	awsCfg, err := amplify.Config(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s3, _, err := amplify.S3Client(ctx, cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	x := &ExportExtractor{s3: s3, keepDel: c.keepDel, policy: c.policy, settings: c.settings}
	x.settings[ExportOption.Name] = cfg.String(ExportOption.Name)
	for _, spec := range splitList(cfg.String(ExportOption.Name)) {
		ex, err := parseExport(spec)
		if err != nil {
			return nil, err
		}
		x.exports = append(x.exports, ex)
	}
	if len(x.exports) == 0 {
		return nil, fmt.Errorf("--%s names no export", ExportOption.Name)
	}
	for _, ex := range x.exports {
		if ex.keys[0] == "" {
			if x.ddb, err = New(ctx, cfg); err != nil {
				return nil, err
			}
			break
		}
	}
	return x, nil
}

// parseExport reads "s3://BUCKET/FOLDER[?keys=PK[,SK]]".
func parseExport(spec string) (*export, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Scheme != "s3" || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, fmt.Errorf("--%s: %q is not an export folder like s3://bucket/prefix/AWSDynamoDB/01234567890123-abcdef12", ExportOption.Name, spec)
	}
	ex := &export{spec: spec, bucket: u.Host, dir: strings.Trim(u.Path, "/")}
	ex.dir = strings.TrimSuffix(ex.dir, "/manifest-summary.json")
	if k := u.Query().Get("keys"); k != "" {
		pk, sk, _ := strings.Cut(k, ",")
		ex.keys = [2]string{pk, sk}
	}
	return ex, nil
}

// Source names the exports read.
func (x *ExportExtractor) Source() string {
	var specs []string
	for _, ex := range x.exports {
		specs = append(specs, "s3://"+ex.bucket+"/"+ex.dir)
	}
	return "dynamodb-export:" + strings.Join(specs, ",")
}

// Close releases nothing.
func (x *ExportExtractor) Close() error { return nil }

// RunSettings are the tables, tombstones and exports options as given.
func (x *ExportExtractor) RunSettings() map[string]string {
	out := map[string]string{}
	for k, v := range x.settings {
		out[k] = v
	}
	return out
}

// Unordered is true: export files hold items in no key order.
func (x *ExportExtractor) Unordered() bool { return true }

// BillableReads is 0: reading an export costs no read capacity.
func (x *ExportExtractor) BillableReads() int64 { return 0 }

// EstimateReads is 0: reading an export costs no read capacity.
func (x *ExportExtractor) EstimateReads(context.Context, extractors.Stream, int64) (int64, error) {
	return 0, nil
}

// Count is the export's itemCount from its summary.
func (x *ExportExtractor) Count(ctx context.Context, s extractors.Stream) (int64, error) {
	ex, err := x.exportOf(ctx, s.Name)
	if err != nil {
		return 0, err
	}
	return ex.items, nil
}

// exportOf returns the loaded export of table, loading the manifests of
// those not loaded yet (a resumed run reads without planning again).
func (x *ExportExtractor) exportOf(ctx context.Context, table string) (*export, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ex := range x.exports {
		if ex.table == "" {
			if err := x.load(ctx, ex); err != nil {
				return nil, err
			}
		}
		if ex.table == table {
			return ex, nil
		}
	}
	return nil, fmt.Errorf("no export of table %q among --%s", table, ExportOption.Name)
}

// summary is what is read of manifest-summary.json.
type summary struct {
	TableArn           string `json:"tableArn"`
	ItemCount          int64  `json:"itemCount"`
	OutputFormat       string `json:"outputFormat"`
	ManifestFilesS3Key string `json:"manifestFilesS3Key"`
}

// load reads an export's manifests; x.mu is held.
func (x *ExportExtractor) load(ctx context.Context, ex *export) error {
	var sum summary
	where := "s3://" + ex.bucket + "/" + ex.dir + "/manifest-summary.json"
	err := x.get(ctx, ex.bucket, ex.dir+"/manifest-summary.json", func(r io.Reader) error {
		return json.NewDecoder(r).Decode(&sum)
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", where, err)
	}
	if sum.OutputFormat != "" && sum.OutputFormat != "DYNAMODB_JSON" {
		return fmt.Errorf("%s: output format %s; only DYNAMODB_JSON exports can be read", where, sum.OutputFormat)
	}
	_, table, ok := strings.Cut(sum.TableArn, ":table/")
	if !ok || table == "" {
		return fmt.Errorf("%s: tableArn %q names no table", where, sum.TableArn)
	}
	table, _, _ = strings.Cut(table, "/")
	manifest := sum.ManifestFilesS3Key
	if manifest == "" {
		manifest = ex.dir + "/manifest-files.json"
	}
	var files []string
	err = x.get(ctx, ex.bucket, manifest, func(r io.Reader) error {
		files = files[:0]
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			var f struct {
				DataFileS3Key string `json:"dataFileS3Key"`
			}
			if err := json.Unmarshal(sc.Bytes(), &f); err != nil || f.DataFileS3Key == "" {
				return retry.Mark(fmt.Errorf("line %d is not a data file entry", line), false)
			}
			files = append(files, f.DataFileS3Key)
		}
		return sc.Err()
	})
	if err != nil {
		return fmt.Errorf("reading s3://%s/%s: %w", ex.bucket, manifest, err)
	}
	if ex.keys[0] == "" {
		d, err := x.ddb.describe(ctx, table, false)
		if err != nil {
			return fmt.Errorf("export %s does not name its key attributes (?keys=PK,SK) and %w", ex.spec, err)
		}
		if ex.keys, err = keySchema(d); err != nil {
			return err
		}
	}
	ex.table, ex.items, ex.files = table, sum.ItemCount, files
	return nil
}

// get runs read on an object's content, retried as a whole.
func (x *ExportExtractor) get(ctx context.Context, bucket, key string, read func(io.Reader) error) error {
	return retry.Do(ctx, x.policy, "reading s3://"+bucket+"/"+key, func(ctx context.Context) error {
		obj, err := x.s3.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		return read(obj)
	})
}

// Plan reads the manifests and splits each export's data files into at
// most partitions partitions.
func (x *ExportExtractor) Plan(ctx context.Context, partitions int, _ time.Time) ([]extractors.Stream, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var streams []extractors.Stream
	for _, ex := range x.exports {
		if err := x.load(ctx, ex); err != nil {
			return nil, err
		}
		st := extractors.Stream{Name: ex.table, Kind: record.KindDocument}
		n := min(max(partitions, 1), max(len(ex.files), 1))
		for i := 0; i < n; i++ {
			lo, hi := i*len(ex.files)/n, (i+1)*len(ex.files)/n
			st.Partitions = append(st.Partitions, extractors.Partition{
				Stream: ex.table, ID: fmt.Sprintf("files-%d-%d", lo, hi), Start: strconv.Itoa(lo), End: strconv.Itoa(hi),
			})
		}
		streams = append(streams, st)
	}
	return streams, nil
}

// Read emits the items of p's data files after the cursor "FILE:LINE".
func (x *ExportExtractor) Read(ctx context.Context, p extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	ex, err := x.exportOf(ctx, p.Stream)
	if err != nil {
		return err
	}
	lo, err1 := strconv.Atoi(p.Start)
	hi, err2 := strconv.Atoi(p.End)
	if err1 != nil || err2 != nil || lo < 0 || hi > len(ex.files) || lo > hi {
		return fmt.Errorf("partition %s/%s does not fit the export's %d data files", p.Stream, p.ID, len(ex.files))
	}
	file, line := lo, 0
	if after != "" {
		f, l, ok := strings.Cut(after, ":")
		var e1, e2 error
		file, e1 = strconv.Atoi(f)
		line, e2 = strconv.Atoi(l)
		if !ok || e1 != nil || e2 != nil || file < lo || file >= hi {
			return fmt.Errorf("resuming %s partition %s: %q is not a cursor of it", p.Stream, p.ID, after)
		}
	}
	for ; file < hi; file, line = file+1, 0 {
		if err := x.readFile(ctx, ex, file, line, emit); err != nil {
			return err
		}
	}
	return nil
}

// emitError carries emit's error through the retry of a file unchanged.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }

// readFile emits the items of data file i after line skip. A failed read
// is retried from the line after the last item emitted.
func (x *ExportExtractor) readFile(ctx context.Context, ex *export, i, skip int, emit func(record.Record) error) error {
	key := ex.files[i]
	where := "s3://" + ex.bucket + "/" + key
	skipped := int64(0)
	defer func() { x.skipped(ctx, ex.table, skipped, "file", where) }()
	wanted := extractors.SkipsWanted(ctx)
	err := retry.Do(ctx, x.policy, "reading "+where, func(ctx context.Context) error {
		obj, err := x.s3.GetObject(ctx, ex.bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		var r io.Reader = obj
		if strings.HasSuffix(key, ".gz") {
			gz, err := gzip.NewReader(obj)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			r = gz
		}
		br := bufio.NewReaderSize(r, 256*1024)
		line := 0
		for {
			text, err := br.ReadBytes('\n')
			if len(text) > 0 {
				line++
				if line > skip {
					rec, perr := x.parseLine(ex, text)
					if perr != nil {
						if !wanted {
							return retry.Mark(fmt.Errorf("%s line %d: %w", where, line, perr), false)
						}
						rec = unreadable(ex, where, line, text, perr)
					}
					if rec != nil {
						if rec.Skip != nil && !rec.Skip.Reject {
							skipped++
						}
						if rec.Skip == nil || wanted {
							rec.Cursor = strconv.Itoa(i) + ":" + strconv.Itoa(line)
							if err := emit(*rec); err != nil {
								return retry.Mark(&emitError{err}, false)
							}
						}
						skip = line
					}
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	if e, ok := asEmitError(err); ok {
		return e
	}
	return err
}

func asEmitError(err error) (error, bool) {
	for e := err; e != nil; {
		if ee, ok := e.(*emitError); ok {
			return ee.err, true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return nil, false
		}
		e = u.Unwrap()
	}
	return nil, false
}

// parseLine parses one line of a data file: nil for a blank line, a
// record with Skip set for a tombstone not kept.
func (x *ExportExtractor) parseLine(ex *export, text []byte) (*record.Record, error) {
	if len(bytes.TrimSpace(text)) == 0 {
		return nil, nil
	}
	var line struct {
		Item map[string]json.RawMessage `json:"Item"`
	}
	if err := json.Unmarshal(text, &line); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if line.Item == nil {
		return nil, fmt.Errorf(`no "Item" object`)
	}
	item := make(map[string]types.AttributeValue, len(line.Item))
	for name, raw := range line.Item {
		av, err := ParseJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", name, err)
		}
		item[name] = av
	}
	rec, _, _, err := toRecord(ex.table, ex.keys, item, x.keepDel)
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// unreadable is the reject record of line of the data file at where, which
// is not an item (perr says why; it quotes no values): keyed by the item's
// key when the line's key attributes can be read, else by the line's
// place; its fields say where it is, not what it holds.
func unreadable(ex *export, where string, line int, text []byte, perr error) *record.Record {
	id := ""
	var l struct {
		Item map[string]json.RawMessage `json:"Item"`
	}
	if json.Unmarshal(text, &l) == nil && l.Item != nil {
		item := map[string]types.AttributeValue{}
		for _, k := range ex.keys {
			if raw, ok := l.Item[k]; ok && k != "" {
				if av, err := ParseJSON(raw); err == nil {
					item[k] = av
				}
			}
		}
		if i, _, err := itemID(ex.keys, item); err == nil {
			id = i
		}
	}
	if id == "" {
		id = escapeID(fmt.Sprintf("(line %d of %s)", line, path.Base(where)))
	}
	return &record.Record{
		Kind: record.KindDocument,
		Key:  ex.table + "/" + id,
		Fields: map[string]record.Value{
			"export_file": record.String(where),
			"line":        record.Int(int64(line)),
		},
		Skip: &record.Skip{Reject: true, Reason: fmt.Sprintf("%s line %d is not an item of the export: %v", where, line, perr)},
	}
}

// ParseJSON decodes one attribute value in DynamoDB JSON ({"S": "a"},
// {"N": "1.5"}, {"B": "<base64>"}, {"BOOL": true}, {"NULL": true},
// {"M": {...}}, {"L": [...]}, {"SS": [...]}, {"NS": [...]}, {"BS": [...]}).
func ParseJSON(raw json.RawMessage) (types.AttributeValue, error) {
	var tv map[string]json.RawMessage
	if err := json.Unmarshal(raw, &tv); err != nil || len(tv) != 1 {
		// The value itself is not quoted: it may be personal data.
		return nil, fmt.Errorf("not a typed DynamoDB JSON value (an object with one of S, N, B, BOOL, NULL, M, L, SS, NS, BS; %d bytes here)", len(raw))
	}
	for t, v := range tv {
		switch t {
		case "S":
			var s string
			err := json.Unmarshal(v, &s)
			return &types.AttributeValueMemberS{Value: s}, err
		case "N":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("N: %w", err)
			}
			if _, err := record.CanonicalDecimal(s); err != nil {
				return nil, fmt.Errorf("N: %w", err)
			}
			return &types.AttributeValueMemberN{Value: s}, nil
		case "B":
			b, err := b64(v)
			return &types.AttributeValueMemberB{Value: b}, err
		case "BOOL":
			var b bool
			err := json.Unmarshal(v, &b)
			return &types.AttributeValueMemberBOOL{Value: b}, err
		case "NULL":
			return &types.AttributeValueMemberNULL{Value: true}, nil
		case "M":
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return nil, fmt.Errorf("M: %w", err)
			}
			out := make(map[string]types.AttributeValue, len(m))
			for k, e := range m {
				av, err := ParseJSON(e)
				if err != nil {
					return nil, fmt.Errorf("%q: %w", k, err)
				}
				out[k] = av
			}
			return &types.AttributeValueMemberM{Value: out}, nil
		case "L":
			var l []json.RawMessage
			if err := json.Unmarshal(v, &l); err != nil {
				return nil, fmt.Errorf("L: %w", err)
			}
			out := make([]types.AttributeValue, len(l))
			for i, e := range l {
				av, err := ParseJSON(e)
				if err != nil {
					return nil, fmt.Errorf("[%d]: %w", i, err)
				}
				out[i] = av
			}
			return &types.AttributeValueMemberL{Value: out}, nil
		case "SS", "NS":
			var ss []string
			if err := json.Unmarshal(v, &ss); err != nil {
				return nil, fmt.Errorf("%s: %w", t, err)
			}
			if t == "SS" {
				return &types.AttributeValueMemberSS{Value: ss}, nil
			}
			return &types.AttributeValueMemberNS{Value: ss}, nil
		case "BS":
			var l []json.RawMessage
			if err := json.Unmarshal(v, &l); err != nil {
				return nil, fmt.Errorf("BS: %w", err)
			}
			out := make([][]byte, len(l))
			for i, e := range l {
				b, err := b64(e)
				if err != nil {
					return nil, err
				}
				out[i] = b
			}
			return &types.AttributeValueMemberBS{Value: out}, nil
		default:
			return nil, fmt.Errorf("unknown DynamoDB type %q", t)
		}
	}
	return nil, nil
}

func b64(raw json.RawMessage) ([]byte, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("B: %w", err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("B: %w", err)
	}
	return b, nil
}
