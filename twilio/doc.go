// Package twilio speaks Twilio's webhook protocol: it parses and classifies
// the requests Twilio sends, checks and produces their X-Twilio-Signature,
// derives idempotency keys from them, and names the Twilio error codes that
// a failed delivery to the application would have caused had Twilio made it.
package twilio
