// An application behind Switchboard that trusts only what Twilio's own
// Node library validates, as a real app would: each request is checked with
// twilio.validateRequest (form and GET webhooks) or
// twilio.validateRequestWithBody (bodies signed through bodySHA256), and
// recorded with the verdict. GET /log returns every request received.
//
// Usage: node app.js AUTH_TOKEN   (prints "listening PORT" once ready)
"use strict";
const http = require("http");
const querystring = require("querystring");
const twilio = require("twilio");

const token = process.argv[2];
const received = [];

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/log") {
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify(received));
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const url = "http://" + req.headers.host + req.url;
    const signature = req.headers["x-twilio-signature"] || "";
    const type = (req.headers["content-type"] || "").split(";")[0].trim().toLowerCase();
    let valid;
    let params = {};
    if (url.includes("bodySHA256=")) {
      valid = twilio.validateRequestWithBody(token, signature, url, body);
    } else {
      if (type === "application/x-www-form-urlencoded") {
        params = querystring.parse(body);
      }
      valid = twilio.validateRequest(token, signature, url, params);
    }
    received.push({ method: req.method, url, body, valid, params,
      event_id: req.headers["x-switchboard-event-id"] || "" });
    res.statusCode = valid ? 200 : 403;
    res.setHeader("Content-Type", "application/xml");
    // A path under /laptop/ is a developer's app behind a listener: its
    // voice route answers a call, and /slow/ answers 25 ms late so that a
    // test can stop a listener while requests are in flight.
    const answer = req.url.startsWith("/laptop/voice")
      ? "<Response><Say>Hello from the laptop</Say></Response>" : "<Response/>";
    if (req.url.startsWith("/slow/")) {
      setTimeout(() => res.end(answer), 25);
      return;
    }
    res.end(answer);
  });
});

server.listen(0, "127.0.0.1", () => {
  console.log("listening " + server.address().port);
});
