package chain

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/fbsobreira/gotron-sdk/pkg/proto/api"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/seedpay/seedpay/chain/tronsim"
)

// keySpy is a WalletSolidity server that records the API key it is sent.
type keySpy struct {
	api.UnimplementedWalletSolidityServer
	got chan []string
}

func (s *keySpy) GetNowBlock2(ctx context.Context, _ *api.EmptyMessage) (*api.BlockExtention, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.got <- md.Get("tron-pro-api-key")
	return &api.BlockExtention{BlockHeader: &core.BlockHeader{RawData: &core.BlockHeaderRaw{Timestamp: 1}}}, nil
}

func TestAPIKeySent(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	spy := &keySpy{got: make(chan []string, 1)}
	api.RegisterWalletSolidityServer(srv, spy)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	cfg := SimConfig(lis.Addr().String(), tronsim.DefaultTokenAddress)
	cfg.APIKey = "k-123"
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.SolidifiedTime(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-spy.got; len(got) != 1 || got[0] != "k-123" {
		t.Fatalf("API key header %q", got)
	}
}
