// Verifies one webhook notification with the Standard Webhooks reference
// library. Input on stdin, as JSON: {"secret": "whsec_…", "headers": {…},
// "body": "<base64 of the exact body>"}. Prints {"ok": true} or
// {"ok": false, "error": "…"}.
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { secret, headers, body } = JSON.parse(input);
  try {
    new Webhook(secret).verify(Buffer.from(body, "base64"), headers);
    console.log(JSON.stringify({ ok: true }));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, error: String(err && err.message) }));
  }
});
