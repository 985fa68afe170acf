package receipts

// Result is the tracker's answer for one receipt of a submitted batch
// (POST /receipts/<passkey>); Reason names a rejection (docs/receipts.md).
type Result struct {
	Index    int    `json:"index"`
	Status   string `json:"status"` // accepted | rejected
	Reason   string `json:"reason,omitempty"`
	Credited uint64 `json:"credited_bytes,omitempty"`
}

// BatchResult is the tracker's answer to a submitted batch: one Result per
// receipt, in order.
type BatchResult struct {
	Accepted      int      `json:"accepted"`
	Rejected      int      `json:"rejected"`
	CreditedBytes uint64   `json:"credited_bytes"`
	Results       []Result `json:"results"`
}
