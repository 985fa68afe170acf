//go:build !race

package peerstore

const raceEnabled = false
