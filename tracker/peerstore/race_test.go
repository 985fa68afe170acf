//go:build race

package peerstore

const raceEnabled = true
