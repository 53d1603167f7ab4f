package llamalib

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Limits on what a tarball may unpack to (the pinned one: 20 libraries,
// 28.9 MB), so that a hostile archive cannot fill the disk even before its
// integrity is known to be wrong (it is checked first anyway).
var (
	maxUnpacked int64 = 256 << 20
	maxFiles          = 256
)

// ErrIntegrity is returned when the download is not the pinned tarball.
var ErrIntegrity = errors.New("integrity mismatch")

// Options adjusts Fetch.
type Options struct {
	// Client makes the request; nil means one that honours
	// HTTPS_PROXY/NO_PROXY and gives up on a server that does not answer
	// (10 s to connect, 30 s for the headers). The context bounds the
	// whole download.
	Client *http.Client
}

// Result is what Fetch did.
type Result struct {
	// Dir is the library directory.
	Dir string
	// Files are the libraries installed, links included, sorted.
	Files []string
	// Already is true when Dir held the pinned build and nothing was
	// downloaded.
	Already bool
}

// source is a tarball to install; the pinned one outside tests.
type source struct {
	url       string
	integrity string
	size      int64
	pin       string
}

var pinned = source{url: URL, integrity: Integrity, size: Size, pin: Pin}

// Fetch installs the pinned build in dir unless it is there already (see
// Inspect): it downloads the tarball, refuses it unless it has exactly the
// pinned size and integrity, unpacks only its .so files (regular files
// directly under its library folder: no links, no paths leading out, at
// most 256 MiB), links libllama.so and libggml.so to the versioned names
// and writes the .version file. Nothing is written to dir before the
// tarball is checked and unpacked in a temporary directory next to it;
// .version comes last. It replaces another build in dir, a build of your
// own included.
func Fetch(ctx context.Context, dir string, o Options) (Result, error) {
	return fetch(ctx, dir, pinned, o)
}

func fetch(ctx context.Context, dir string, src source, o Options) (Result, error) {
	res := Result{Dir: dir}
	if st, _ := inspect(dir, src.pin); st == Pinned {
		res.Already = true
		res.Files, _ = installed(dir)
		return res, nil
	}
	// Stage next to the files' final place, on the same file system, so
	// that installing them is a rename: inside dir when it exists (it may
	// be a mount point), else beside it.
	stageIn := dir
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		stageIn = filepath.Dir(dir)
		if err := os.MkdirAll(stageIn, 0o755); err != nil {
			return res, err
		}
	case err != nil:
		return res, err
	case !fi.IsDir():
		return res, fmt.Errorf("%s is not a directory", dir)
	}
	stage, err := os.MkdirTemp(stageIn, ".llama-fetch-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(stage)

	tgz := filepath.Join(stage, "package.tgz")
	if err := download(ctx, o.client(), src, tgz); err != nil {
		return res, err
	}
	lib := filepath.Join(stage, "lib")
	if err := unpack(tgz, lib); err != nil {
		return res, fmt.Errorf("unpacking %s: %w", src.url, err)
	}
	for link, target := range links {
		if _, err := os.Stat(filepath.Join(lib, target)); err != nil {
			return res, fmt.Errorf("unpacking %s: the package has no %s", src.url, target)
		}
		if err := os.Symlink(target, filepath.Join(lib, link)); err != nil {
			return res, err
		}
	}
	if err := os.WriteFile(filepath.Join(lib, VersionFile), []byte(src.pin+"\n"), 0o644); err != nil {
		return res, err
	}
	if err := install(lib, dir); err != nil {
		return res, err
	}
	res.Files, err = installed(dir)
	return res, err
}

func (o Options) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

// download writes src to path, checking its size and integrity.
func download(ctx context.Context, c *http.Client, src source, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", src.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: the registry answered %s", src.url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha512.New()
	// One byte past the pinned size tells a longer download from a
	// complete one without reading an endless body.
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, src.size+1))
	if err != nil {
		return fmt.Errorf("downloading %s: %w after %d of %d bytes", src.url, err, n, src.size)
	}
	if n != src.size {
		what := "truncated"
		if n > src.size {
			what = "too long"
		}
		return fmt.Errorf("downloading %s: %s: got %d bytes, the pinned tarball has %d", src.url, what, n, src.size)
	}
	if got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil)); got != src.integrity {
		return fmt.Errorf("%w for %s: got %s, want %s (not the pinned tarball; nothing was installed)", ErrIntegrity, src.url, got, src.integrity)
	}
	return f.Close()
}

// unpack writes the tarball's libraries (regular files named *.so directly
// under bins) into dir, refusing the whole archive on an entry that would
// lead out of it, a link where a library should be, or too much data.
func unpack(tgz, dir string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	var total int64
	files := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := hdr.Name
		if strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || slices.Contains(strings.Split(name, "/"), "..") {
			return fmt.Errorf("entry %q leads out of the package", name)
		}
		name = path.Clean(name)
		base, ok := strings.CutPrefix(name, bins)
		if !ok || strings.Contains(base, "/") || !strings.HasSuffix(base, ".so") {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("entry %q is not a regular file (type %q)", hdr.Name, hdr.Typeflag)
		}
		files++
		total += hdr.Size
		if files > maxFiles || hdr.Size < 0 || total > maxUnpacked {
			return fmt.Errorf("the package unpacks to more than %d files or %d MiB", maxFiles, maxUnpacked>>20)
		}
		out, err := os.OpenFile(filepath.Join(dir, base), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err // O_EXCL: the same name twice
		}
		n, err := io.Copy(out, io.LimitReader(tr, hdr.Size))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if n != hdr.Size {
			return fmt.Errorf("entry %q: %w", hdr.Name, io.ErrUnexpectedEOF)
		}
	}
	if files == 0 {
		return fmt.Errorf("no libraries under %s", bins)
	}
	return nil
}

// install moves the staged libraries into dir: the whole directory at once
// when dir does not exist, else file by file (each a rename), .version
// last, so that dir never claims a build it does not hold.
func install(lib, dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return os.Rename(lib, dir)
	}
	entries, err := os.ReadDir(lib)
	if err != nil {
		return err
	}
	// A .version left from an earlier build goes first: between here and
	// the last rename, dir is a build of no known version.
	if err := os.Remove(filepath.Join(dir, VersionFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if e.Name() == VersionFile {
			continue
		}
		if err := os.Rename(filepath.Join(lib, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return os.Rename(filepath.Join(lib, VersionFile), filepath.Join(dir, VersionFile))
}

// installed lists dir's libraries.
func installed(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".so") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
