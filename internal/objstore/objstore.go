package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/icefill/icefill/internal/errkind"
)

// Object describes one stored object. Path is relative to the store's root
// and always uses '/'.
type Object struct {
	Path    string
	Size    int64
	ModTime time.Time
	// ETag is the S3 entity tag; empty on local disks.
	ETag string
}

// File is an open object that supports the random access Parquet needs.
type File interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Store is the small surface icefill needs from a file system or a bucket.
// Two implementations exist: Local and S3.
type Store interface {
	// List returns every object below prefix (recursively), sorted by path.
	List(ctx context.Context, prefix string) ([]Object, error)
	// ListDirs returns the names of the immediate sub-folders of prefix, sorted.
	ListDirs(ctx context.Context, prefix string) ([]string, error)
	// Open opens an object for random reads.
	Open(ctx context.Context, path string) (File, error)
	// Create returns a writer whose content becomes visible at path, whole,
	// only when Close returns nil: readers never see half an object.
	Create(ctx context.Context, path string) (io.WriteCloser, error)
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, path string) error
	// URL is the user-facing address of path, for messages.
	URL(path string) string
}

// ErrNotExist is returned (wrapped) when an object or root is missing.
var ErrNotExist = errors.New("object does not exist")

// S3Options configure access to S3-compatible storage. Zero values fall back
// to the AWS SDK's usual environment (AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_ENDPOINT_URL, profiles, instance roles).
type S3Options struct {
	// Endpoint is a custom endpoint such as http://127.0.0.1:9000. Setting it
	// switches to path-style addressing, which S3-compatible servers expect.
	Endpoint string
	Region   string
	// AccessKeyID and SecretAccessKey, when both set, replace the default
	// credential chain. They are never printed.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// PathStyle forces path-style addressing even without a custom endpoint.
	PathStyle bool
}

// S3OptionsFromEnv fills the icefill-specific settings from ICEFILL_S3_*
// variables; the AWS SDK reads its own AWS_* variables by itself.
func S3OptionsFromEnv() S3Options {
	return S3Options{
		Endpoint:        os.Getenv("ICEFILL_S3_ENDPOINT"),
		Region:          os.Getenv("ICEFILL_S3_REGION"),
		AccessKeyID:     os.Getenv("ICEFILL_S3_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("ICEFILL_S3_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("ICEFILL_S3_SESSION_TOKEN"),
		PathStyle:       os.Getenv("ICEFILL_S3_PATH_STYLE") == "true",
	}
}

// Open returns the store rooted at location: a local path, a file:// URL or
// an s3://bucket/prefix URL.
// Every error it returns is the caller's to fix (errkind.Usage).
func Open(ctx context.Context, location string, opts S3Options) (Store, error) {
	st, err := open(ctx, location, opts)
	return st, errkind.UsageError(err)
}

func open(ctx context.Context, location string, opts S3Options) (Store, error) {
	switch {
	case strings.HasPrefix(location, "s3://"), strings.HasPrefix(location, "s3a://"):
		u, err := url.Parse(location)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", location, err)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("%q names no bucket: write s3://bucket/prefix", location)
		}
		return NewS3(ctx, u.Host, strings.Trim(u.Path, "/"), opts)
	case strings.HasPrefix(location, "file://"):
		u, err := url.Parse(location)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", location, err)
		}
		return NewLocal(u.Path)
	case strings.Contains(location, "://"):
		return nil, fmt.Errorf("%q: unsupported scheme; use a local path, file:// or s3://", location)
	default:
		return NewLocal(location)
	}
}

// joinKey joins store-relative path parts with '/'.
func joinKey(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p = strings.Trim(p, "/"); p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "/")
}

// cleanRel rejects paths that would escape the root.
func cleanRel(p string) (string, error) {
	c := filepath.ToSlash(filepath.Clean("/" + p))
	if strings.Contains(p, "..") && c != "/"+strings.Trim(p, "/") {
		return "", fmt.Errorf("path %q leaves the store root", p)
	}
	return strings.TrimPrefix(c, "/"), nil
}
