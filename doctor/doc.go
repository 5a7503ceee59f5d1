// Package doctor probes a webhook URL the way Twilio calls it, with
// Twilio's headers, parameters, signature and timeouts, and names every
// problem it finds together with the Twilio error code that problem leads
// to and a one-line fix. It answers the question Twilio's 11200 page leaves
// open: which of a dozen possible causes is it?
package doctor
