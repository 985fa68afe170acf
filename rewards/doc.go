// Package rewards is the reward ledger in Redis: it turns announces into
// integer points per user, epoch and pool (Lua scripts in lua/), and seals
// each epoch into exact token amounts with a Merkle root. It never imports
// chihaya: the tracker hands it plain Events.
package rewards
