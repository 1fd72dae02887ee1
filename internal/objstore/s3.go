package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/icefill/icefill/internal/errkind"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 is a Store on a bucket of an S3-compatible server.
type S3 struct {
	client *s3.Client
	bucket string
	prefix string
}

// NewS3 connects to bucket under prefix. Credentials and region come from
// opts when set, otherwise from the AWS SDK's default chain.
func NewS3(ctx context.Context, bucket, prefix string, opts S3Options) (*S3, error) {
	var loaders []func(*config.LoadOptions) error
	if opts.Region != "" {
		loaders = append(loaders, config.WithRegion(opts.Region))
	}
	if opts.AccessKeyID != "" && opts.SecretAccessKey != "" {
		loaders = append(loaders, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		// S3-compatible servers rarely care, but the SDK refuses to sign without one.
		cfg.Region = "us-east-1"
	}
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
	}
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
		if opts.PathStyle {
			o.UsePathStyle = true
		}
		// S3-compatible servers differ in checksum support; only compute
		// checksums where the operation requires them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &S3{client: client, bucket: bucket, prefix: strings.Trim(prefix, "/")}, nil
}

func (s *S3) key(p string) (string, error) {
	rel, err := cleanRel(p)
	if err != nil {
		return "", err
	}
	return joinKey(s.prefix, rel), nil
}

// URL implements Store.
func (s *S3) URL(p string) string {
	k, err := s.key(p)
	if err != nil {
		return p
	}
	return "s3://" + s.bucket + "/" + k
}

func (s *S3) rel(key string) string {
	return strings.TrimPrefix(strings.TrimPrefix(key, s.prefix), "/")
}

func dirPrefix(k string) string {
	if k == "" {
		return ""
	}
	return k + "/"
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	k, err := s.key(prefix)
	if err != nil {
		return nil, err
	}
	var out []Object
	pager := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(dirPrefix(k)),
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.URL(prefix), wrapS3(err))
		}
		for _, o := range page.Contents {
			rel := s.rel(aws.ToString(o.Key))
			base := rel[strings.LastIndex(rel, "/")+1:]
			if strings.HasPrefix(base, ".") || strings.HasSuffix(rel, "/") {
				continue
			}
			out = append(out, Object{
				Path: rel, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified).UTC(),
				ETag: strings.Trim(aws.ToString(o.ETag), `"`),
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// ListDirs implements Store.
func (s *S3) ListDirs(ctx context.Context, prefix string) ([]string, error) {
	k, err := s.key(prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	pager := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(dirPrefix(k)), Delimiter: aws.String("/"),
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.URL(prefix), wrapS3(err))
		}
		for _, p := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), dirPrefix(k)), "/")
			if name != "" {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

type s3File struct {
	ctx    context.Context
	client *s3.Client
	bucket string
	key    string
	size   int64
	etag   string
}

func (f *s3File) Size() int64  { return f.size }
func (f *s3File) Close() error { return nil }

// ReadAt issues one ranged GET pinned to the ETag seen at Open, so a file
// replaced under a running read fails loudly instead of mixing versions.
func (f *s3File) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	end := off + int64(len(p)) - 1
	if end >= f.size {
		end = f.size - 1
	}
	in := &s3.GetObjectInput{
		Bucket: aws.String(f.bucket), Key: aws.String(f.key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
	}
	if f.etag != "" {
		in.IfMatch = aws.String(f.etag)
	}
	out, err := f.client.GetObject(f.ctx, in)
	if err != nil {
		return 0, fmt.Errorf("read s3://%s/%s at %d: %w", f.bucket, f.key, off, wrapS3(err))
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p[:end-off+1])
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// Open implements Store.
func (s *S3) Open(ctx context.Context, p string) (File, error) {
	k, err := s.key(p)
	if err != nil {
		return nil, err
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.URL(p), wrapS3(err))
	}
	return &s3File{ctx: ctx, client: s.client, bucket: s.bucket, key: k,
		size: aws.ToInt64(head.ContentLength), etag: aws.ToString(head.ETag)}, nil
}

// s3Writer spools to a temporary file and uploads on Close: a PUT is atomic,
// so readers never see a partial object.
type s3Writer struct {
	*os.File
	s    *S3
	ctx  context.Context
	key  string
	done bool
}

func (w *s3Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	defer os.Remove(w.File.Name())
	if _, err := w.File.Seek(0, io.SeekStart); err != nil {
		w.File.Close()
		return err
	}
	defer w.File.Close()
	_, err := w.s.client.PutObject(w.ctx, &s3.PutObjectInput{
		Bucket: aws.String(w.s.bucket), Key: aws.String(w.key), Body: w.File,
	})
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", w.s.bucket, w.key, wrapS3(err))
	}
	return nil
}

// Create implements Store.
func (s *S3) Create(ctx context.Context, p string) (io.WriteCloser, error) {
	k, err := s.key(p)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "icefill-upload-*")
	if err != nil {
		return nil, fmt.Errorf("spool for %s: %w", s.URL(p), err)
	}
	return &s3Writer{File: f, s: s, ctx: ctx, key: k}, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, p string) error {
	k, err := s.key(p)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return fmt.Errorf("delete %s: %w", s.URL(p), wrapS3(err))
	}
	return nil
}

// wrapS3 turns "not found" answers into ErrNotExist so callers can tell a
// missing object from a broken connection.
func wrapS3(err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nb *types.NoSuchBucket
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nb) {
		return fmt.Errorf("%w: %v", ErrNotExist, err)
	}
	var api smithy.APIError
	if errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey") {
		return fmt.Errorf("%w: %v", ErrNotExist, err)
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Anything else is the storage failing (after the SDK's own retries).
	return errkind.UnavailableError(err)
}
