package record

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Field names of file records. Extractors of files fill them through
// File.Fields; sinks read them back with FileFrom. The migration executor reads FileFieldSize for byte
// progress.
const (
	FileFieldBucket             = "bucket"
	FileFieldSize               = "size"
	FileFieldContentType        = "contentType"
	FileFieldCacheControl       = "cacheControl"
	FileFieldContentDisposition = "contentDisposition"
	FileFieldContentEncoding    = "contentEncoding"
	FileFieldContentLanguage    = "contentLanguage"
	FileFieldMD5                = "md5"
	FileFieldCRC32C             = "crc32c"
	FileFieldGeneration         = "generation"
	FileFieldMetageneration     = "metageneration"
	FileFieldStorageClass       = "storageClass"
	FileFieldMetadata           = "metadata"
	FileFieldDownloadTokens     = "downloadTokens"
)

// File is what a file record says about an object at its source: its
// identity, size, checksums and HTTP metadata. The bytes come from the
// record's Open.
type File struct {
	// Bucket is the source bucket and Name the object name, kept exactly.
	Bucket, Name string
	// Size is the object's length in bytes.
	Size int64
	// HTTP metadata served with the object; "" when unset.
	ContentType, CacheControl, ContentDisposition, ContentEncoding, ContentLanguage string
	// MD5 is the MD5 digest of the bytes, nil when the source has none
	// (Cloud Storage composite objects).
	MD5 []byte
	// CRC32C is the CRC-32C (Castagnoli) of the bytes when HasCRC32C.
	CRC32C    uint32
	HasCRC32C bool
	// Generation identifies this version of the object's bytes and
	// Metageneration the version of its metadata; 0 when unknown.
	Generation, Metageneration int64
	StorageClass               string
	// Metadata is the object's custom metadata, keys and values exactly as
	// the source holds them (whatever the source derives DownloadTokens
	// from included).
	Metadata map[string]string
	// DownloadTokens are the object's download tokens, in order: secrets
	// that existing clients put in the object's download URLs, so they are
	// migrated with it; nil when the source has none.
	DownloadTokens []string
	// Created and Updated are the source's timestamps.
	Created, Updated time.Time
}

// CRC32CBytes returns the CRC-32C big-endian, the form Cloud Storage and S3
// transmit it in (base64 of these 4 bytes), or nil without one.
func (f File) CRC32CBytes() []byte {
	if !f.HasCRC32C {
		return nil
	}
	return binary.BigEndian.AppendUint32(nil, f.CRC32C)
}

// Fields encodes f as the fields of a file record (the FileField* names).
// Empty strings, a nil MD5 and a missing CRC32C are left out.
func (f File) Fields() map[string]Value {
	m := map[string]Value{
		FileFieldBucket: String(f.Bucket),
		FileFieldSize:   Int(f.Size),
	}
	for _, kv := range [...][2]string{
		{FileFieldContentType, f.ContentType}, {FileFieldCacheControl, f.CacheControl},
		{FileFieldContentDisposition, f.ContentDisposition}, {FileFieldContentEncoding, f.ContentEncoding},
		{FileFieldContentLanguage, f.ContentLanguage}, {FileFieldStorageClass, f.StorageClass},
	} {
		if kv[1] != "" {
			m[kv[0]] = String(kv[1])
		}
	}
	if f.MD5 != nil {
		m[FileFieldMD5] = Bytes(f.MD5)
	}
	if f.HasCRC32C {
		m[FileFieldCRC32C] = Int(int64(f.CRC32C))
	}
	if f.Generation != 0 {
		m[FileFieldGeneration] = Int(f.Generation)
	}
	if f.Metageneration != 0 {
		m[FileFieldMetageneration] = Int(f.Metageneration)
	}
	if len(f.Metadata) > 0 {
		md := make(map[string]Value, len(f.Metadata))
		for k, v := range f.Metadata {
			md[k] = String(v)
		}
		m[FileFieldMetadata] = Map(md)
	}
	if len(f.DownloadTokens) > 0 {
		toks := make([]Value, len(f.DownloadTokens))
		for i, t := range f.DownloadTokens {
			toks[i] = String(t)
		}
		m[FileFieldDownloadTokens] = Array(toks...)
	}
	return m
}

// FileFrom decodes a file record made by File.Fields. It fails when
// rec is not a file record or a field has the wrong type.
func FileFrom(rec Record) (File, error) {
	if rec.Kind != KindFile {
		return File{}, fmt.Errorf("record %q is a %s, not a file", rec.Key, rec.Kind)
	}
	f := File{Name: rec.Key, Created: rec.CreateTime, Updated: rec.UpdateTime}
	var problems []string
	str := func(name string, dst *string) {
		if v, ok := rec.Fields[name]; ok {
			if v.Type() != TypeString {
				problems = append(problems, fmt.Sprintf("%s is a %s, not a string", name, v.Type()))
				return
			}
			*dst = v.StringValue()
		}
	}
	integer := func(name string, dst *int64) bool {
		v, ok := rec.Fields[name]
		if !ok {
			return false
		}
		if v.Type() != TypeInt {
			problems = append(problems, fmt.Sprintf("%s is a %s, not an integer", name, v.Type()))
			return false
		}
		*dst = v.IntValue()
		return true
	}
	str(FileFieldBucket, &f.Bucket)
	str(FileFieldContentType, &f.ContentType)
	str(FileFieldCacheControl, &f.CacheControl)
	str(FileFieldContentDisposition, &f.ContentDisposition)
	str(FileFieldContentEncoding, &f.ContentEncoding)
	str(FileFieldContentLanguage, &f.ContentLanguage)
	str(FileFieldStorageClass, &f.StorageClass)
	if !integer(FileFieldSize, &f.Size) || f.Size < 0 {
		problems = append(problems, "size is missing or negative")
	}
	integer(FileFieldGeneration, &f.Generation)
	integer(FileFieldMetageneration, &f.Metageneration)
	var crc int64
	if integer(FileFieldCRC32C, &crc) {
		if crc < 0 || crc > 0xFFFFFFFF {
			problems = append(problems, fmt.Sprintf("crc32c %d is out of range", crc))
		}
		f.CRC32C, f.HasCRC32C = uint32(crc), true
	}
	if v, ok := rec.Fields[FileFieldMD5]; ok {
		if v.Type() != TypeBytes || len(v.BytesValue()) != 16 {
			problems = append(problems, "md5 is not 16 bytes")
		} else {
			f.MD5 = v.BytesValue()
		}
	}
	if v, ok := rec.Fields[FileFieldMetadata]; ok {
		if v.Type() != TypeMap {
			problems = append(problems, "metadata is not a map")
		} else {
			f.Metadata = make(map[string]string, len(v.MapValue()))
			for k, mv := range v.MapValue() {
				if mv.Type() != TypeString {
					problems = append(problems, fmt.Sprintf("metadata %q is a %s, not a string", k, mv.Type()))
					continue
				}
				f.Metadata[k] = mv.StringValue()
			}
		}
	}
	if v, ok := rec.Fields[FileFieldDownloadTokens]; ok {
		if v.Type() != TypeArray {
			problems = append(problems, "downloadTokens is not an array")
		} else {
			for i, t := range v.ArrayValue() {
				if t.Type() != TypeString {
					problems = append(problems, fmt.Sprintf("download token %d is a %s, not a string", i, t.Type()))
					continue
				}
				f.DownloadTokens = append(f.DownloadTokens, t.StringValue())
			}
		}
	}
	if len(problems) > 0 {
		return File{}, fmt.Errorf("file record %q: %s", rec.Key, strings.Join(problems, "; "))
	}
	return f, nil
}
