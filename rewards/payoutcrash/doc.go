// Package payoutcrash holds the payout outbox's crash tests: a real payer
// process, the real gotron-sdk client and a tronsim node, killed with
// SIGKILL at every step of the state machine. It has no non-test code.
package payoutcrash
