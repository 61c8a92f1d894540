//go:build !linux

package ha

func freebind(uintptr) error { return nil }
