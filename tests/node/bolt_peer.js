// SOFA Bolt v1 peer on sofa-bolt-node (its encoder and decoder are the library's whole API: it
// leaves connections to the caller). Everything on 127.0.0.1.
//
//   node bolt_peer.js server         prints {"port": N}, then one JSON line per command it
//                                    decoded: {packetType, packetId, codec, serverSignature,
//                                    methodName, headers}; answers requests (hessian2: a string;
//                                    protobuf: an EchoResponse; method "fail": a SERVER_EXCEPTION
//                                    response) and heartbeats (a heartbeat ack); "notify" (called
//                                    oneway) gets no answer.
//   node bolt_peer.js client PORT    sends the calls below on one connection and prints one JSON
//                                    line per call: {id, sent, got} where sent is the request and
//                                    got what the library's decoder made of the answer.
//   node bolt_peer.js call PORT      one protobuf call (id 7, props {user: alice}) and one
//                                    heartbeat (id 8): prints what came back, {error} included.
"use strict";
const net = require("net");
const protobuf = require("protobufjs");
const bolt = require("sofa-bolt-node");

const SERVICE = "com.example.EchoService:1.0";
const proto = protobuf.Root.fromJSON({nested: {com: {nested: {example: {nested: {
  EchoRequest: {fields: {name: {type: "string", id: 1}}},
  EchoResponse: {fields: {code: {type: "int32", id: 1}, message: {type: "string", id: 2}}},
  EchoService: {methods: {echo: {requestType: "EchoRequest", responseType: "EchoResponse"},
                          fail: {requestType: "EchoRequest", responseType: "EchoResponse"},
                          notify: {requestType: "EchoRequest", responseType: "EchoResponse"}}},
}}}}}});

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function pair(socket) {
  const sentReqs = new Map();
  const encoder = bolt.encoder({sentReqs, proto});
  const decoder = bolt.decoder({sentReqs, proto});
  encoder.pipe(socket).pipe(decoder);
  decoder.on("error", (err) => process.stderr.write(`decode error: ${err.stack || err}\n`));
  return {encoder, decoder, sentReqs};
}

function server() {
  const srv = net.createServer((socket) => {
    const {encoder, decoder} = pair(socket);
    socket.on("error", () => {});
    decoder.on("request", (req) => {
      const data = req.data;
      const headers = Object.assign({}, data.requestProps || {});
      delete headers.rpc_trace_context;
      const codec = req.options.codecType;
      const methodName = data.methodName;
      out({packetType: "request", packetId: req.packetId, codec, timeout: req.options.timeout,
           serverSignature: data.serverSignature || data.targetServiceUniqueName, methodName,
           headers: codec === "protobuf" ? headers : null});
      if (methodName === "notify") {
        return; // called oneway: the decoder does not say so, the method's contract does
      }
      if (methodName === "fail") {
        encoder.writeResponse(req, {isError: true, errorMsg: "fail on purpose", appResponse: null});
      } else if (codec === "protobuf") {
        const name = data.args[0] ? data.args[0].name : "";
        encoder.writeResponse(req, {isError: false, appResponse: {code: 200, message: `hello ${name}`}});
      } else {
        encoder.writeResponse(req, {isError: false, appResponse: {$class: "java.lang.String", $: "hello"}});
      }
    });
    decoder.on("heartbeat", (hb) => {
      out({packetType: "heartbeat", packetId: hb.packetId, codec: hb.options.codecType});
      encoder.writeHeartbeatAck(hb);
    });
  });
  srv.listen(0, "127.0.0.1", () => out({port: srv.address().port}));
}

function request(id, codec, method, props, oneway) {
  const req = {serverSignature: SERVICE, methodName: method, timeout: 3000, targetAppName: "echo-app"};
  if (codec === "protobuf") {
    req.args = [{name: `caller ${id}`}];
    if (props) {
      req.requestProps = props;
    }
  } else {
    req.args = [{$class: "java.lang.String", $: `caller ${id}`}];
  }
  if (oneway) {
    req.oneway = true;
  }
  return req;
}

// [id, codec, method, props, oneway] or [id, "heartbeat"]
const CALLS = [
  [1, "hessian2", "echo"],
  [2, "heartbeat"],
  [3, "protobuf", "echo", {user: "alice", "X-Tenant": "t\u00e9st"}],
  [4, "protobuf", "echo", null],
  [5, "protobuf", "notify", {user: "bob"}, true],
  [6, "protobuf", "fail", {user: "carol"}],
  [7, "hessian2", "echo"],
  [1073741823, "protobuf", "echo", {"x-long": "v".repeat(300)}],
];

function client(port, calls) {
  const socket = net.connect(port, "127.0.0.1");
  const {encoder, decoder, sentReqs} = pair(socket);
  let pending = 0;
  const results = new Map();
  const finish = () => {
    for (const call of calls) {
      out(results.get(call[0]));
    }
    socket.end();
  };
  const answered = (id, got) => {
    results.get(id).got = got;
    if (--pending === 0) {
      finish();
    }
  };
  socket.on("error", (err) => process.stderr.write(`socket error: ${err.stack || err}\n`));
  decoder.on("response", (res) => {
    const data = res.data || {};
    if (data.error) {
      answered(res.packetId, {packetType: "response", error: data.error.message});
    } else {
      const app = data.appResponse;
      answered(res.packetId, {packetType: "response",
                              value: app && app.toJSON ? app.toJSON() : app});
    }
  });
  decoder.on("heartbeat_ack", (ack) => answered(ack.packetId, {packetType: "heartbeat_ack"}));
  socket.once("connect", () => {
    for (const [id, codec, method, props, oneway] of calls) {
      if (codec === "heartbeat") {
        results.set(id, {id, sent: {packetType: "heartbeat"}, got: null});
        pending++;
        encoder.writeHeartbeat(id, {clientUrl: "codecgen-test"});
        continue;
      }
      const req = request(id, codec, method, props, oneway);
      results.set(id, {id, sent: {packetType: "request", codec, methodName: method, props: props || null,
                                  oneway: !!oneway, serverSignature: SERVICE, targetAppName: req.targetAppName},
                       got: null});
      encoder.codecType = codec;
      sentReqs.set(id, {req});
      if (!oneway) {
        pending++;
      }
      encoder.writeRequest(id, req);
    }
  });
}

const [mode, port] = process.argv.slice(2);
if (mode === "server") {
  server();
} else if (mode === "client") {
  client(Number(port), CALLS);
} else if (mode === "call") {
  client(Number(port), [[7, "protobuf", "echo", {user: "alice"}], [8, "heartbeat"]]);
} else {
  process.stderr.write("usage: node bolt_peer.js server | client PORT | call PORT\n");
  process.exit(2);
}
