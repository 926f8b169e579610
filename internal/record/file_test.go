package record

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFileFieldsRoundTrip: FileFrom decodes what File.Fields encodes,
// download tokens included (in order), and leaves them nil without any.
func TestFileFieldsRoundTrip(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, f := range []File{
		{Bucket: "b", Name: "n", Size: 3, ContentType: "text/plain", MD5: make([]byte, 16), CRC32C: 7, HasCRC32C: true,
			Generation: 2, Metageneration: 1, StorageClass: "STANDARD",
			Metadata: map[string]string{"k": "v"}, DownloadTokens: []string{"t2", "t1"}, Created: at, Updated: at},
		{Bucket: "b", Name: "plain", Created: at, Updated: at},
	} {
		got, err := FileFrom(Record{Kind: KindFile, Key: f.Name, Fields: f.Fields(), CreateTime: at, UpdateTime: at})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", f) {
			t.Errorf("round trip\n got %#v\nwant %#v", got, f)
		}
	}
}

// TestFileFromRefusesBadDownloadTokens: tokens must be an array of strings.
func TestFileFromRefusesBadDownloadTokens(t *testing.T) {
	for _, v := range []Value{String("t1,t2"), Array(String("t1"), Int(2))} {
		fields := File{Bucket: "b", Name: "n"}.Fields()
		fields[FileFieldDownloadTokens] = v
		_, err := FileFrom(Record{Kind: KindFile, Key: "n", Fields: fields})
		if err == nil || !strings.Contains(err.Error(), "download") {
			t.Errorf("tokens %v: error %v, want one naming the download tokens", v, err)
		}
	}
}
