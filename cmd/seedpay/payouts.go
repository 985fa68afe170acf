package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/seedpay/seedpay/configs"
	"github.com/seedpay/seedpay/rewards"
)

// adminClient calls the admin API with the token from the environment, so
// the token never appears in a shell history or process list.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func newAdminClient(base string) (*adminClient, error) {
	token := os.Getenv(configs.EnvAdminToken)
	if token == "" {
		return nil, fmt.Errorf("set %s to the admin token", configs.EnvAdminToken)
	}
	return &adminClient{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

func (c *adminClient) do(method, path string, out any) error {
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	return json.Unmarshal(body, out)
}

func newPayoutsCmd() *cobra.Command {
	var apiURL string
	cmd := &cobra.Command{Use: "payouts", Short: "List and retry token payouts (through the admin API)"}
	cmd.PersistentFlags().StringVar(&apiURL, "api", "http://127.0.0.1:6970", "admin API base URL (token from "+configs.EnvAdminToken+")")

	var state, user string
	list := &cobra.Command{
		Use:   "list",
		Short: "List payouts by state, or one user's payouts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(apiURL)
			if err != nil {
				return err
			}
			path := "/api/v1/payouts?state=" + url.QueryEscape(state)
			if user != "" {
				path = "/api/v1/users/" + url.PathEscape(user) + "/payouts"
			}
			var page struct {
				Payouts []rewards.Payout `json:"payouts"`
			}
			if err := c.do(http.MethodGet, path, &page); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tAMOUNT\tSTATE\tTXIDS\tREASON")
			for _, p := range page.Payouts {
				var txids []string
				for _, tx := range p.Txs {
					s := tx.TxID
					if tx.Dead {
						s += "(dead)"
					}
					txids = append(txids, s)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.User, p.Amount, p.State, strings.Join(txids, ","), p.Reason)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&state, "state", rewards.PayoutPending, "pending, signed, broadcast, confirmed or failed")
	list.Flags().StringVar(&user, "user", "", "list this user's payouts instead")

	retry := &cobra.Command{
		Use:   "retry PAYOUT_ID",
		Short: "Step a payout now (after funding the hot wallet or fixing the node); lifts a resource pause",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("payout id is empty")
			}
			c, err := newAdminClient(apiURL)
			if err != nil {
				return err
			}
			var p rewards.Payout
			if err := c.do(http.MethodPost, "/api/v1/payouts/"+url.PathEscape(args[0])+"/retry", &p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "payout %s: %s %s\n", p.ID, p.State, p.Reason)
			return nil
		},
	}
	cmd.AddCommand(list, retry)
	return cmd
}
