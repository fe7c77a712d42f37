'use strict';
// The CaptureService stub and a unary call helper, shared by the Node suites
// that capture (capture.test.js, wire_format.test.js).

const path = require('node:path');

const { repoRoot } = require('./stack');
const grpc = require(path.join(repoRoot, 'tools/node_modules/@grpc/grpc-js'));
const protoLoader = require(path.join(repoRoot, 'tools/node_modules/@grpc/proto-loader'));

const CALL_TIMEOUT_MS = 10000;

// A CaptureService client of `target` (plaintext), field names as in the proto.
function captureClient(target) {
  const definition = protoLoader.loadSync('posthog/v1/capture.proto', {
    includeDirs: [path.join(repoRoot, 'proto'), '/usr/include'],
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
  });
  const { CaptureService } = grpc.loadPackageDefinition(definition).posthog.v1;
  return new CaptureService(target, grpc.credentials.createInsecure());
}

// Calls the unary `method` of `client`; resolves with the response.
function unaryCall(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + CALL_TIMEOUT_MS },
      (error, response) => (error ? reject(error) : resolve(response)));
  });
}

module.exports = { captureClient, unaryCall };
