package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/seedpay/seedpay/chain"
)

// The hot wallet key is made and checked here; it is never printed. There
// is deliberately no way to print or export the private key from seedpay:
// back the keystore file up (it is encrypted) together with its passphrase.

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create and check the hot wallet key that pays out",
	}
	cmd.AddCommand(newKeysNewCmd(), newKeysShowCmd())
	return cmd
}

// passphraseSource reads a passphrase from the environment or, failing
// that, from the terminal without echo. Its fields are swapped in tests.
type passphraseSource struct {
	lookupEnv  func(string) (string, bool)
	isTerminal func(fd int) bool
	readSecret func(fd int) ([]byte, error)
}

func defaultPassphraseSource() passphraseSource {
	return passphraseSource{lookupEnv: os.LookupEnv, isTerminal: term.IsTerminal, readSecret: term.ReadPassword}
}

// terminalFD returns stdin's descriptor when it is a terminal.
func (p passphraseSource) terminalFD(in io.Reader) (int, bool) {
	f, ok := in.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, p.isTerminal(fd)
}

// get returns SEEDPAY_KEYSTORE_PASSPHRASE if it is set and not empty, else
// asks on the terminal (twice when confirm). Prompts go to prompt (stderr).
func (p passphraseSource) get(in io.Reader, prompt io.Writer, confirm bool) (string, error) {
	if v, ok := p.lookupEnv(chain.EnvKeystorePassphrase); ok && v != "" {
		return v, nil
	}
	fd, ok := p.terminalFD(in)
	if !ok {
		return "", fmt.Errorf("no passphrase: set %s, or run this on a terminal to be asked for it", chain.EnvKeystorePassphrase)
	}
	fmt.Fprint(prompt, "Keystore passphrase: ")
	first, err := p.readSecret(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("reading the passphrase: %w", err)
	}
	defer clear(first)
	if len(first) == 0 {
		return "", errors.New("empty passphrase")
	}
	if confirm {
		fmt.Fprint(prompt, "Repeat the passphrase: ")
		second, err := p.readSecret(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("reading the passphrase: %w", err)
		}
		defer clear(second)
		if !bytes.Equal(first, second) {
			return "", errors.New("the passphrases do not match")
		}
	}
	return string(first), nil
}

func newKeysNewCmd() *cobra.Command {
	var (
		dir   string
		light bool
	)
	cmd := &cobra.Command{
		Use:   "new --keystore DIR",
		Short: "Make a new hot wallet key in an encrypted keystore file",
		Long: "Generates a new secp256k1 key, writes it to DIR as a keystore file (gotron-sdk /\n" +
			"Web3 Secret Storage JSON, scrypt + AES-128-CTR, mode 0600) and prints its TRON address\n" +
			"and the file's path. The passphrase comes from " + chain.EnvKeystorePassphrase + ", or is\n" +
			"asked for on the terminal. The private key is never printed; keep a backup of the file\n" +
			"and the passphrase. Point the chain config's keystore at the file and give the running\n" +
			"tracker the passphrase in " + chain.EnvKeystorePassphrase + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--keystore DIR is required")
			}
			pass, err := defaultPassphraseSource().get(cmd.InOrStdin(), cmd.ErrOrStderr(), true)
			if err != nil {
				return err
			}
			addr, path, err := chain.NewKeystoreFile(dir, pass, light)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "address: %s\n", addr)
			fmt.Fprintf(out, "keystore: %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "keystore", "", "directory to write the keystore file into (created 0700 if missing)")
	cmd.Flags().BoolVar(&light, "light-kdf", false, "use light scrypt parameters (fast, much weaker: tests and development only)")
	return cmd
}

func newKeysShowCmd() *cobra.Command {
	var cfg chain.KeyConfig
	cmd := &cobra.Command{
		Use:   "show [--keystore FILE|DIR] [--address T...]",
		Short: "Load the hot wallet key as the tracker would and print its address",
		Long: "Loads the key from " + chain.EnvHotKey + " or from the keystore (decrypting it with\n" +
			chain.EnvKeystorePassphrase + ", or a passphrase asked for on the terminal) and prints its\n" +
			"address and where it came from: a check that a keystore and passphrase work. It never\n" +
			"prints the key.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src := defaultPassphraseSource()
			cfg.LookupEnv = os.LookupEnv
			hot, haveHot := os.LookupEnv(chain.EnvHotKey)
			if cfg.Keystore != "" && (!haveHot || hot == "") {
				pass, err := src.get(cmd.InOrStdin(), cmd.ErrOrStderr(), false)
				if err != nil {
					return err
				}
				cfg.LookupEnv = func(k string) (string, bool) {
					if k == chain.EnvKeystorePassphrase {
						return pass, true
					}
					return os.LookupEnv(k)
				}
			}
			k, err := chain.LoadHotKey(cfg)
			if err != nil {
				return err
			}
			defer k.Destroy()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "address: %s\n", k.Address())
			fmt.Fprintf(out, "source: %s\n", k.Source())
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Keystore, "keystore", "", "keystore file, or a directory holding one")
	cmd.Flags().StringVar(&cfg.Address, "address", "", "the address the key must have (picks it in a directory of several)")
	return cmd
}
