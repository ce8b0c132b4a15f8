// Tars peer on @tars/rpc (its server, HeroServer, and its client, a Communicator proxy) and
// @tars/stream (the Tars coding of the arguments). Everything on 127.0.0.1.
//
//   node tars_peer.js server         prints {"port": N}, then one JSON line per request its
//                                    dispatcher got: {servant, func, requestId, version,
//                                    packetType, context}. echo(text) answers text with the
//                                    response context {"served-by": "tars-nodejs", ...the
//                                    request's}; fail answers iRet -7 "fail on purpose";
//                                    notify is called oneway; other functions: FUNC_NOT_FOUND.
//   node tars_peer.js client PORT    the calls below, one after the other; prints one JSON line
//                                    per call: {func, requestId, context, packetType, ok, ret,
//                                    text, desc, responseContext}.
//   node tars_peer.js tup PORT       TUP calls (iVersion 3, @tars/stream's Tup on a socket): echo,
//                                    fail, nosuchfunc; one JSON line per answer {func, requestId,
//                                    sent, ret, text}.
//   node tars_peer.js call PORT      echo with context {user: alice}, then echo again.
"use strict";
const net = require("net");
const TarsStream = require("@tars/stream");
const Tars = require("@tars/rpc");

const SERVANT = "Test.EchoServer.EchoObj";

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function mapToObject(map) {
  const obj = {};
  if (map && map.forEach) {
    map.forEach((key, value) => {
      obj[key] = value;
    });
  }
  return obj;
}

function EchoImp() {}
EchoImp.prototype.initialize = function () {};
EchoImp.prototype.onDispatch = function (current, func, buffer) {
  const request = current.getRequest();
  const context = mapToObject(current.getContext());
  out({servant: request.sServantName, func, requestId: current.getRequestId(), version: request.iVersion,
       packetType: request.cPacketType, context});
  const tup = request.iVersion === TarsStream.Tup.TUP_SIMPLE || request.iVersion === TarsStream.Tup.TUP_COMPLEX;
  if ((func === "echo" || func === "notify") && tup) {
    const args = new TarsStream.UniAttribute();
    args.tupVersion = request.iVersion;
    args.decode(buffer);
    const answer = new TarsStream.UniAttribute();
    answer.tupVersion = request.iVersion;
    answer.writeInt32("", 0);
    answer.writeString("text", args.readString("text"));
    current.doResponse(answer.encode());
    return Tars.error.SUCCESS;
  }
  if (func === "echo" || func === "notify") {
    const text = new TarsStream.TarsInputStream(buffer).readString(1, true);
    current.setResponseContext(Object.assign({"served-by": "tars-nodejs"}, context));
    const os = new TarsStream.TarsOutputStream();
    os.writeInt32(0, 0);
    os.writeString(2, text);
    current.doResponse(os.getBinBuffer());
    return Tars.error.SUCCESS;
  }
  if (func === "fail") {
    current.sendErrorResponse(-7, "fail on purpose");
    return Tars.error.SUCCESS;
  }
  return Tars.error.SERVER.FUNC_NOT_FOUND;
};

function server() {
  const probe = net.createServer();
  probe.listen(0, "127.0.0.1", () => {
    const port = probe.address().port;
    probe.close(() => {
      const option = new Tars.server.BindAdapterOption();
      option.endpoint = `tcp -h 127.0.0.1 -p ${port} -t 60000`;
      option.name = "Test.EchoServer.EchoObjAdapter";
      option.servant = SERVANT;
      option.handleImp = EchoImp;
      Tars.server.createServer().start(option);
      out({port});
    });
  });
}

function EchoProxy() {
  this._name = undefined;
  this._worker = undefined;
}
EchoProxy.prototype.setTimeout = function (timeout) {
  this._worker.timeout = timeout;
};
EchoProxy.prototype.getTimeout = function () {
  return this._worker.timeout;
};
EchoProxy.prototype.call = function (func, text, property) {
  const os = new TarsStream.TarsOutputStream();
  os.writeString(1, text);
  return this._worker.tars_invoke(func, os.getBinBuffer(), property);
};

// What the library's client made of one call: data is {request: ReqMessage, response:
// ResponsePacket} when it resolves, an RpcCallError with .error {code, message} when it rejects.
function describe(func, property, data, ok) {
  const request = (data.request && data.request.request) || {};
  const result = {func, requestId: request.iRequestId, context: (property && property.context) || {},
                  packetType: (property && property.packetType) || 0, ok};
  if (ok) {
    const origin = data.response;
    result.ret = origin.iRet;
    result.text = new TarsStream.TarsInputStream(origin.sBuffer).readString(2, true);
    result.responseContext = mapToObject(origin.context);
  } else {
    result.ret = data.error.code;
    result.desc = data.error.message;
    result.responseContext = data.response ? mapToObject(data.response.context) : null;
  }
  return result;
}

// [func, text, property]
const CALLS = [
  ["echo", "hello", {context: {user: "alice", "X-Tenant": "t\u00e9st"}}],
  ["echo", "no context", undefined],
  ["notify", "fire and forget", {packetType: 1, context: {user: "bob"}}],
  ["fail", "x", {context: {user: "carol"}}],
  ["nosuchfunc", "x", undefined],
  ["echo", "v".repeat(300), {context: {"x-long": "w".repeat(300)}}],
];

async function client(port, calls) {
  const proxy = Tars.client.stringToProxy(EchoProxy, `${SERVANT}@tcp -h 127.0.0.1 -p ${port} -t 60000`);
  proxy.setTimeout(3000);
  for (const [func, text, property] of calls) {
    if (property && property.packetType === 1) { // the library rejects a oneway call once sent
      const data = await proxy.call(func, text, property).then(() => null, (err) => err);
      out({func, requestId: data.request.request.iRequestId, context: property.context, packetType: 1,
           ok: null, desc: data.error.message});
      continue;
    }
    try {
      out(describe(func, property, await proxy.call(func, text, property), true));
    } catch (data) {
      out(describe(func, property, data, false));
    }
  }
  Tars.client.destroy();
  process.exit(0);
}

// TUP (iVersion 3) calls with @tars/stream's Tup over a plain socket, as its examples do: the
// server answers with a RequestPacket whose status carries STATUS_RESULT_CODE.
const TUP_CALLS = [["echo", 100], ["fail", 101], ["nosuchfunc", 102]];

function tupClient(port) {
  const socket = net.connect(port, "127.0.0.1");
  let pending = Buffer.alloc(0);
  let next = 0;
  const send = () => {
    const [func, id] = TUP_CALLS[next];
    const tup = new TarsStream.Tup();
    tup.tupVersion = TarsStream.Tup.TUP_COMPLEX;
    tup.servantName = SERVANT;
    tup.funcName = func;
    tup.requestId = id;
    tup.writeString("text", `tup ${func}`);
    socket.write(tup.encode().toNodeBuffer());
  };
  socket.on("connect", send);
  socket.on("data", (data) => {
    pending = Buffer.concat([pending, data]);
    while (pending.length >= 4 && pending.length >= pending.readUInt32BE(0)) {
      const size = pending.readUInt32BE(0);
      const tup = new TarsStream.Tup();
      tup.decode(new TarsStream.BinBuffer(pending.slice(0, size)));
      const [func, id] = TUP_CALLS[next];
      const ret = tup.getTarsResultCode();
      out({func, requestId: tup.requestId, sent: id, ret, text: ret === 0 ? tup.readString("text") : null});
      pending = pending.slice(size);
      if (++next === TUP_CALLS.length) {
        socket.end();
        return;
      }
      send();
    }
  });
}

const [mode, port] = process.argv.slice(2);
if (mode === "server") {
  server();
} else if (mode === "client") {
  client(Number(port), CALLS);
} else if (mode === "tup") {
  tupClient(Number(port));
} else if (mode === "call") {
  client(Number(port), [["echo", "first", {context: {user: "alice"}}], ["echo", "second", undefined]]);
} else {
  process.stderr.write("usage: node tars_peer.js server | client PORT | call PORT\n");
  process.exit(2);
}
