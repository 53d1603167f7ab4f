package policies

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
)

// kubeletVolume lays out a directory as kubelet mounts a ConfigMap (its
// AtomicWriter): each update writes the files into a new hidden,
// timestamped directory, points a new ..data_tmp link at it and renames
// that over ..data in one step, links every new key at the top level to
// ..data/<key>, and removes the old directory. The top-level names never
// change; what they resolve to changes at once.
type kubeletVolume struct {
	dir string
	cur string // the timestamped directory ..data points to
}

func (v *kubeletVolume) update(files map[string]string) error {
	ts, err := os.MkdirTemp(v.dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return err
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(src), 0o644); err != nil {
			return err
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				return err
			}
		}
	}
	// Keys that left the ConfigMap lose their link.
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, keep := files[e.Name()]; !keep && !strings.HasPrefix(e.Name(), "..") {
			if err := os.Remove(filepath.Join(v.dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if v.cur != "" {
		if err := os.RemoveAll(v.cur); err != nil {
			return err
		}
	}
	v.cur = ts
	return nil
}

// revisionOf is the revision the engine reports for a bundle of these
// files, wherever they are.
func revisionOf(t *testing.T, files map[string]string) string {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, src := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(src)}
	}
	b, err := LoadBundle(fsys)
	require.NoError(t, err)
	return b.Revision
}

// TestWatchReloadsKubernetesConfigMapMount: a bundle mounted from a
// ConfigMap, as the Helm chart mounts it, is reloaded when kubelet swaps
// the volume's ..data link, without a restart, and the new policy decides.
func TestWatchReloadsKubernetesConfigMapMount(t *testing.T) {
	shipped := map[string]string{}
	for _, name := range []string{"routing.rego", "data.json"} {
		src, err := os.ReadFile(filepath.Join("bundle", name))
		require.NoError(t, err)
		shipped[name] = string(src)
	}
	// The same bundle with tenant t pinned to the EU and one more module,
	// a key the first version of the ConfigMap did not have.
	pinned := maps.Clone(shipped)
	pinned["data.json"] = strings.Replace(shipped["data.json"], `"acme": {"pii_mode": "redact"}`,
		`"acme": {"pii_mode": "redact"}, "t": {"jurisdiction": "EU"}`, 1)
	require.NotEqual(t, shipped["data.json"], pinned["data.json"], "the shipped data.json changed: update this test's edit")
	pinned["extra.rego"] = "package switchyard.extra\n\nimport rego.v1\n\nn := 1\n"
	// A warm-up version: it differs from the first only by a comment.
	warm := maps.Clone(shipped)
	warm["routing.rego"] = shipped["routing.rego"] + "\n# warm-up\n"

	v := &kubeletVolume{dir: t.TempDir()}
	require.NoError(t, v.update(shipped))
	e, err := New(context.Background(), v.dir, nil)
	require.NoError(t, err)
	require.Equal(t, revisionOf(t, shipped), e.Status().Revision, "the hidden timestamped directory is loaded once, through the links")

	in := &Input{Subject: Subject{Tenant: "t"}, Request: Request{Model: "default"}, Candidates: candidates()}
	d, err := e.Decide(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, []string{"ollama/llama3.2", "openai/gpt-4o-mini"}, d.Routes)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx, 20*time.Millisecond) }()

	// Watch starts watching asynchronously and says nothing when it does:
	// swap in the warm-up version until a reload shows the watch is on.
	warmRev := revisionOf(t, warm)
	var updateErr error
	require.Eventually(t, func() bool {
		if e.Status().Revision == warmRev || updateErr != nil {
			return true
		}
		updateErr = v.update(warm)
		return false
	}, 10*time.Second, 100*time.Millisecond, "the watch never picked up a ..data swap")
	require.NoError(t, updateErr)

	// One update, as kubelet makes it when the ConfigMap changes.
	require.NoError(t, v.update(pinned))
	want := revisionOf(t, pinned)
	require.Eventually(t, func() bool { return e.Status().Revision == want }, 10*time.Second, 10*time.Millisecond,
		"one ..data swap was not reloaded: revision %s, want %s", e.Status().Revision, want)
	st := e.Status()
	require.Empty(t, st.LastError)
	require.Zero(t, st.LoadErrors, "no reload may see a half-written volume")

	d, err = e.Decide(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, want, d.Revision)
	require.Equal(t, []string{"ollama/llama3.2"}, d.Routes, "the new data document is in force: tenant t is pinned to the EU")
	require.Equal(t, "DATA_RESIDENCY", d.Excluded["openai/gpt-4o-mini"][0].Code)

	// The old timestamped directory is gone; the links resolve into the new one.
	target, err := os.Readlink(filepath.Join(v.dir, "..data"))
	require.NoError(t, err)
	require.Equal(t, filepath.Base(v.cur), target)
	entries, err := os.ReadDir(v.dir)
	require.NoError(t, err)
	var hidden []string
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "..") && en.Name() != "..data" {
			hidden = append(hidden, en.Name())
		}
	}
	require.Equal(t, []string{target}, hidden)

	cancel()
	require.NoError(t, <-done)
}
