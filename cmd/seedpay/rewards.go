package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seedpay/seedpay/rewards"
)

func newRewardsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rewards", Short: "Inspect the reward ledger"}
	cmd.AddCommand(newVerifyProofCmd())
	return cmd
}

// verify-proof checks a proof offline: it needs nothing but the proof JSON
// (from GET /api/v1/epochs/{n}/proof/{user}) and the published root.
func newVerifyProofCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "verify-proof [FILE|-]",
		Short: "Check a Merkle proof of one user's credit against an epoch root",
		Long: "Reads a proof JSON (from the API's /api/v1/epochs/{n}/proof/{user}) from FILE or stdin,\n" +
			"recomputes the leaf from epoch, user, address and amount, and walks the path to the root.\n" +
			"With --root, the proof must also end at that root (the one published for the epoch).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			body, err := io.ReadAll(io.LimitReader(in, 1<<20))
			if err != nil {
				return err
			}
			var p rewards.Proof
			if err := json.Unmarshal(body, &p); err != nil {
				return fmt.Errorf("proof JSON: %w", err)
			}
			if root != "" && !strings.EqualFold(root, p.Root) {
				return fmt.Errorf("proof is for root %s, not the published root %s", p.Root, root)
			}
			if err := p.Verify(); err != nil {
				return fmt.Errorf("proof does not verify: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: epoch %d, user %s, amount %s is in root %s\n", p.Epoch, p.User, p.Amount, p.Root)
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "the epoch's published Merkle root (hex); the proof must end there")
	return cmd
}
