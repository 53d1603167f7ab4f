package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/switchyard/switchyard/gateway"
)

const keyUsage = `usage:
  switchyard key hash [KEY]     print the SHA-256 that config stores for KEY (read from stdin without it;
                                a key that starts with "-" goes after --)
  switchyard key new [flags]    make a new random key: print it once, then the config entry with its hash
                                (the key itself is stored nowhere)`

// keyCmd runs `switchyard key hash|new`.
func keyCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, keyUsage)
		return errors.New("key: which command? hash or new")
	}
	switch args[0] {
	case "hash":
		return keyHash(args[1:], stdin, stdout, stderr)
	case "new":
		return keyNew(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, keyUsage)
		return nil
	}
	fmt.Fprintln(stderr, keyUsage)
	return fmt.Errorf("unknown key command %q", args[0])
}

func keyHash(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchyard key hash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: switchyard key hash [KEY]\n\nPrints the lowercase hex SHA-256 of KEY, which config stores as keys[].sha256 or\nadmin.keys[].sha256. Without KEY it reads one line from stdin (keeps the key out of\nshell history). A key that starts with \"-\" goes after --.")
	}
	if err := fs.Parse(args); err != nil {
		return err // flag.ErrHelp after -h: run makes it success
	}
	key := ""
	switch fs.NArg() {
	case 0:
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		key = strings.TrimSpace(line)
	case 1:
		key = fs.Arg(0)
	default:
		return errors.New("key hash: one key at a time")
	}
	if key == "" {
		return errors.New("no key given")
	}
	fmt.Fprintln(stdout, gateway.HashKey(key))
	return nil
}

// newKey is "sk-sy-" and 32 random bytes, base64url: 256 bits that no
// one guesses, in characters a header and a shell take as they are.
func newKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "sk-sy-" + base64.RawURLEncoding.EncodeToString(b), nil
}

func keyNew(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchyard key new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.Bool("admin", false, "an admin key (admin.keys: the admin API and /dashboard) rather than a virtual key")
	id := fs.String("id", "", "the key's id in config, logs and metrics (default: admin or my-key)")
	tenant := fs.String("tenant", "default", "the virtual key's tenant (not with -admin)")
	team := fs.String("team", "", "the virtual key's team (not with -admin)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: switchyard key new [-admin] [-id ID] [-tenant T] [-team M]\n\nMakes a random key, prints it once (store it now: only its hash is kept) and the\nconfig.yaml entry that enables it.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err // flag.ErrHelp after -h: run makes it success
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("key new: unexpected argument %q", fs.Arg(0))
	}
	if *admin {
		// An admin key has no tenant or team: giving one is a mistake,
		// not something to drop silently.
		var set []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "tenant" || f.Name == "team" {
				set = append(set, "-"+f.Name)
			}
		})
		if len(set) > 0 {
			return fmt.Errorf("key new: %s cannot go with -admin: an admin key has no tenant or team (they are for virtual keys)", strings.Join(set, " and "))
		}
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	hash := gateway.HashKey(key)
	if *id == "" {
		*id = "my-key"
		if *admin {
			*id = "admin"
		}
	}
	fmt.Fprintf(stdout, "key (shown once; only its hash is stored): %s\n\n", key)
	if *admin {
		fmt.Fprintf(stdout, "add to config.yaml:\n\nadmin:\n  keys:\n    - {id: %s, sha256: %s}\n", *id, hash)
		return nil
	}
	entry := fmt.Sprintf("{id: %s, sha256: %s, tenant: %s", *id, hash, *tenant)
	if *team != "" {
		entry += ", team: " + *team
	}
	fmt.Fprintf(stdout, "add to config.yaml:\n\nkeys:\n  - %s}\n", entry)
	return nil
}
