// Package e2e tests Switchboard end to end: its tests build the switchboard
// binary once, run it as a subprocess against SQLite and PostgreSQL, and run
// the app it delivers to. Twilio is the simulator: package sim in the test
// process, sending its signed webhooks through a tunnel to the subprocess,
// or, in TestSimulatorBinaries, switchboard sim serve and switchboard sim
// traffic, driven over HTTP. Only requests Twilio never sends (unsigned,
// forged, or repeated with the same idempotency token) are built by hand.
//
// Every test runs once per store, as subtests named "sqlite" and
// "postgres". The PostgreSQL ones run only when SWITCHBOARD_TEST_POSTGRES_URL
// names a test database (see package pgtest), for example
//
//	SWITCHBOARD_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./e2e
//
// Tests that exercise a known product bug are skipped with a "bug:" reason
// unless SWITCHBOARD_TEST_KNOWN_BUGS is set, so that a fix can be checked by
// running them.
package e2e
