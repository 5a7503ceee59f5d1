// An application that sends through Switchboard with Twilio's own Node
// library, pointed at Switchboard the way docs/sdks.md says: a custom
// httpClient that sends every request for https://*.twilio.com to
// Switchboard instead (api.twilio.com as is, other hosts under a path
// prefix naming the host). Nothing else about the library changes.
//
// Usage: node client.js SCENARIO 'JSON-ARGS'
//
// Environment:
//   SWITCHBOARD_URL      Switchboard's base URL, e.g. http://127.0.0.1:8080
//   TWILIO_ACCOUNT_SID   the account (AC...)
//   TWILIO_AUTH_TOKEN    one of its auth tokens, or else
//   TWILIO_API_KEY and TWILIO_API_SECRET, an API key (SK...) of the account
//
// Scenarios (JSON-ARGS in parentheses):
//   create        ({to, from, body, statusCallback})   one message
//   create-twice  ({to, from, body})                   the same create twice
//   fetch         ({sid})                              one message
//   fetch-until   ({sid, status, timeoutMs})           fetch until it has status
//   list          ({to, limit, pageSize})              list() and each(), paging
//   call          ({to, from, url})                    a call (passed through)
//
// Prints one JSON object on stdout: the scenario's result, or, when the
// API answered an error, {"error": {"status", "code", "message",
// "moreInfo"}}; both with "requests", every request the library made, as
// sent. Exits non-zero only when the scenario itself could not run.
"use strict";
const twilio = require("twilio");

// SwitchboardRequestClient is the httpClient: it rewrites the URL of each
// request and hands it to the library's own RequestClient.
class SwitchboardRequestClient {
  constructor(base) {
    this.base = new URL(base);
    this.inner = new twilio.RequestClient({ timeout: 15000 });
    this.requests = [];
  }

  request(opts) {
    const uri = toSwitchboard(this.base, opts.uri);
    const u = new URL(uri);
    this.requests.push({ method: String(opts.method).toUpperCase(), url: uri, path: u.pathname });
    return this.inner.request({ ...opts, uri });
  }
}

// toSwitchboard is where Switchboard serves a Twilio URL: api.twilio.com's
// paths under the base, another Twilio host's under /<host>. Any other URL
// is left alone.
function toSwitchboard(base, uri) {
  const u = new URL(uri);
  if (u.protocol !== "https:" || !u.hostname.endsWith(".twilio.com")) {
    return uri;
  }
  const prefix = u.hostname === "api.twilio.com" ? "" : "/" + u.hostname;
  return base.origin + base.pathname.replace(/\/+$/, "") + prefix + u.pathname + u.search;
}

function newClient(httpClient) {
  const env = process.env;
  const opts = { httpClient, accountSid: env.TWILIO_ACCOUNT_SID };
  if (env.TWILIO_API_KEY) {
    return twilio(env.TWILIO_API_KEY, env.TWILIO_API_SECRET, opts);
  }
  return twilio(env.TWILIO_ACCOUNT_SID, env.TWILIO_AUTH_TOKEN, opts);
}

function message(m) {
  return {
    sid: m.sid, status: m.status, to: m.to, from: m.from, body: m.body,
    accountSid: m.accountSid, errorCode: m.errorCode,
  };
}

// pagesOf counts the GET requests for the Messages list made since start.
function pagesOf(http, start) {
  return http.requests.slice(start).filter((r) => r.method === "GET" && r.path.endsWith("/Messages.json")).length;
}

const scenarios = {
  async create(client, _http, a) {
    const params = { to: a.to, from: a.from, body: a.body };
    if (a.statusCallback) params.statusCallback = a.statusCallback;
    return { message: message(await client.messages.create(params)) };
  },

  async "create-twice"(client, _http, a) {
    const params = { to: a.to, from: a.from, body: a.body };
    const first = await client.messages.create(params);
    const second = await client.messages.create(params);
    return { messages: [message(first), message(second)] };
  },

  async fetch(client, _http, a) {
    return { message: message(await client.messages(a.sid).fetch()) };
  },

  async "fetch-until"(client, _http, a) {
    const deadline = Date.now() + (a.timeoutMs || 30000);
    let m;
    let polls = 0;
    for (;;) {
      m = await client.messages(a.sid).fetch();
      polls++;
      if (m.status === a.status || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return { message: message(m), polls };
  },

  async list(client, http, a) {
    const params = { to: a.to, limit: a.limit, pageSize: a.pageSize };
    let start = http.requests.length;
    // A copy each time: list() keeps its callback and done in the
    // parameters it is given, which each() would then use.
    const listed = await client.messages.list({ ...params });
    const listPages = pagesOf(http, start);
    start = http.requests.length;
    const each = [];
    await new Promise((resolve, reject) => {
      client.messages.each({ ...params, done: (err) => (err ? reject(err) : resolve()) }, (m) => {
        each.push(m.sid);
      });
    });
    return {
      list: { sids: listed.map((m) => m.sid), pages: listPages },
      each: { sids: each, pages: pagesOf(http, start) },
    };
  },

  async call(client, _http, a) {
    const c = await client.calls.create({ to: a.to, from: a.from, url: a.url });
    return { call: { sid: c.sid, status: c.status, to: c.to, from: c.from, accountSid: c.accountSid } };
  },
};

async function main() {
  const [name, rawArgs] = process.argv.slice(2);
  const scenario = scenarios[name];
  if (!scenario) {
    throw new Error("unknown scenario " + JSON.stringify(name) + "; one of " + Object.keys(scenarios).join(", "));
  }
  if (!process.env.SWITCHBOARD_URL) {
    throw new Error("SWITCHBOARD_URL is not set");
  }
  const http = new SwitchboardRequestClient(process.env.SWITCHBOARD_URL);
  const client = newClient(http);
  let out;
  try {
    out = await scenario(client, http, JSON.parse(rawArgs || "{}"));
  } catch (err) {
    if (!(err instanceof twilio.RestException)) throw err;
    out = { error: { status: err.status, code: err.code, message: err.message, moreInfo: err.moreInfo } };
  }
  out.requests = http.requests;
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + "\n");
  process.exit(1);
});
