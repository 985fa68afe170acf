package tronsim

import (
	"context"
	"fmt"
	"path"

	"github.com/fbsobreira/gotron-sdk/pkg/proto/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FaultKind names one injectable misbehaviour.
type FaultKind int

// Fault kinds. Broadcast faults apply to BroadcastTransaction calls that pass
// validation (Reject applies before it); execution faults to transactions as
// a block executes them.
const (
	// FaultDrop answers SUCCESS and forgets the transaction: it never lands,
	// and broadcasting the same bytes again is accepted afresh.
	FaultDrop FaultKind = iota + 1
	// FaultDelay accepts the transaction but includes it only Blocks blocks
	// later than usual (it is dropped if it expires meanwhile).
	FaultDelay
	// FaultDup accepts the transaction and answers DUP_TRANSACTION_ERROR, as
	// a node does when a peer relayed it first.
	FaultDup
	// FaultReject answers Code (SERVER_BUSY, BANDWITH_ERROR, SIGERROR, ...)
	// without looking at the transaction.
	FaultReject
	// FaultOutOfEnergy makes a transfer fail OUT_OF_ENERGY, burning what its
	// fee_limit allows.
	FaultOutOfEnergy
	// FaultRevert makes a transfer REVERT.
	FaultRevert
	// FaultUnavailable answers every RPC on both services with
	// codes.Unavailable (Times counts RPCs).
	FaultUnavailable
	// FaultTamper makes TriggerContract return a transaction paying a
	// different recipient than asked (a malicious or broken node).
	FaultTamper
	// FaultNoInfos makes GetTransactionInfoByBlockNum (both services)
	// answer an empty list whatever the block holds (Times counts calls), as
	// a node that does not keep transaction infos, or a lagging node behind
	// a load balancer, does.
	FaultNoInfos
)

func (k FaultKind) String() string {
	switch k {
	case FaultDrop:
		return "drop"
	case FaultDelay:
		return "delay"
	case FaultDup:
		return "dup"
	case FaultReject:
		return "reject"
	case FaultOutOfEnergy:
		return "out_of_energy"
	case FaultRevert:
		return "revert"
	case FaultUnavailable:
		return "unavailable"
	case FaultTamper:
		return "tamper"
	case FaultNoInfos:
		return "no_infos"
	}
	return fmt.Sprintf("fault(%d)", int(k))
}

// Fault is one injected misbehaviour. Times > 0 applies it to the next Times
// matching calls, then it clears itself; Times == 0 keeps it until Clear.
type Fault struct {
	Kind    FaultKind
	Times   int
	Code    api.ReturnResponseCode // FaultReject
	Message string                 // FaultReject (default: the code's name)
	Blocks  int                    // FaultDelay
	// Method limits FaultUnavailable to RPCs of this name (both services),
	// e.g. "GetTransactionInfoByBlockNum"; empty: every RPC.
	Method string
}

// Inject sets a fault, replacing one of the same kind.
func (n *Node) Inject(f Fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := f
	n.faults[f.Kind] = &c
	n.log.Info("tronsim: fault injected: " + f.Kind.String())
}

// Clear removes a fault.
func (n *Node) Clear(k FaultKind) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.faults, k)
}

// ClearFaults removes every fault.
func (n *Node) ClearFaults() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.faults {
		delete(n.faults, k)
	}
}

// DropBroadcast answers the next times broadcasts (0: until cleared) with
// SUCCESS and never includes them.
func (n *Node) DropBroadcast(times int) { n.Inject(Fault{Kind: FaultDrop, Times: times}) }

// DelayBroadcast includes the next times broadcast transactions blocks later.
func (n *Node) DelayBroadcast(blocks, times int) {
	n.Inject(Fault{Kind: FaultDelay, Times: times, Blocks: blocks})
}

// AnswerDup accepts the next times broadcasts but answers
// DUP_TRANSACTION_ERROR.
func (n *Node) AnswerDup(times int) { n.Inject(Fault{Kind: FaultDup, Times: times}) }

// RejectBroadcast answers the next times broadcasts with code.
func (n *Node) RejectBroadcast(code api.ReturnResponseCode, times int) {
	n.Inject(Fault{Kind: FaultReject, Times: times, Code: code})
}

// OutOfEnergy makes the next times executed transfers fail OUT_OF_ENERGY.
func (n *Node) OutOfEnergy(times int) { n.Inject(Fault{Kind: FaultOutOfEnergy, Times: times}) }

// Revert makes the next times executed transfers REVERT.
func (n *Node) Revert(times int) { n.Inject(Fault{Kind: FaultRevert, Times: times}) }

// Unavailable answers the next times RPCs with codes.Unavailable.
func (n *Node) Unavailable(times int) { n.Inject(Fault{Kind: FaultUnavailable, Times: times}) }

// UnavailableFor answers the next times calls of the RPC named method (e.g.
// "GetTransactionInfoByBlockNum") with codes.Unavailable; others succeed.
func (n *Node) UnavailableFor(method string, times int) {
	n.Inject(Fault{Kind: FaultUnavailable, Times: times, Method: method})
}

// NoInfos makes the next times GetTransactionInfoByBlockNum calls answer an
// empty list.
func (n *Node) NoInfos(times int) { n.Inject(Fault{Kind: FaultNoInfos, Times: times}) }

// take returns the active fault of kind k and counts one use; mu must be
// held.
func (n *Node) take(k FaultKind) *Fault {
	f := n.faults[k]
	if f == nil {
		return nil
	}
	c := *f
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(n.faults, k)
		}
	}
	return &c
}

// intercept implements FaultUnavailable for every RPC (or the one named in
// the fault).
func (n *Node) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	n.mu.Lock()
	var f *Fault
	if g := n.faults[FaultUnavailable]; g != nil && (g.Method == "" || path.Base(info.FullMethod) == g.Method) {
		f = n.take(FaultUnavailable)
	}
	n.mu.Unlock()
	if f != nil {
		return nil, status.Error(codes.Unavailable, "tronsim: injected unavailability")
	}
	return h(ctx, req)
}
