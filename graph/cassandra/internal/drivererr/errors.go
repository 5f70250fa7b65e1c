// Package gocql (directory drivererr) holds stand-ins for unexported error
// types of the Cassandra driver, for tests of the store's error classes:
// the store recognises them by their type's name, which reflect renders
// with the package name, "gocql".
package gocql

// ProtocolError stands in for the driver's *gocql.protocolError.
func ProtocolError(msg string) error { return &protocolError{msg: msg} }

type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }
