// A THeader server on Apache Thrift's Node.js library (a second THeader implementation, beside
// the Python one in tests/corpus/peers.py). For every request it prints one JSON line:
// {"method", "seqid", "mtype", "headers"} with the info headers its THeaderTransport read, then
// answers a CALL with an empty REPLY whose headers echo the request's plus served-by.
// Listens on 127.0.0.1 (port 0: the OS picks); prints {"port": N} first.
"use strict";
const thrift = require("thrift");

const processor = {
  process(input, output) {
    const begin = input.readMessageBegin();
    const headers = Object.assign({}, input.trans.getReadHeaders());
    input.skip(thrift.Thrift.Type.STRUCT);
    input.readMessageEnd();
    input.trans.clearReadHeaders();
    process.stdout.write(JSON.stringify({method: begin.fname, seqid: begin.rseqid, mtype: begin.mtype,
                                         headers}) + "\n");
    if (begin.mtype !== thrift.Thrift.MessageType.CALL) {
      return;
    }
    output.trans.clearWriteHeaders();
    for (const [key, value] of Object.entries(headers)) {
      output.trans.setWriteHeader(key, value);
    }
    output.trans.setWriteHeader("served-by", "thrift-nodejs");
    output.writeMessageBegin(begin.fname, thrift.Thrift.MessageType.REPLY, begin.rseqid);
    output.writeStructBegin("result");
    output.writeFieldStop();
    output.writeStructEnd();
    output.writeMessageEnd();
    output.flush();
  },
};

const server = thrift.createMultiplexServer(processor, {transport: thrift.TBufferedTransport,
                                                        protocol: thrift.THeaderProtocol});
server.on("error", (err) => process.stderr.write(`server error: ${err.stack || err}\n`));
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({port: server.address().port}) + "\n");
});
