#!/usr/bin/env node
// Calls the gateway's UserService.GetCurrentUser from Node.js, loading the
// .proto files at run time with @grpc/proto-loader (no generated code):
//   node client/examples/get_current_user.js localhost:50051 [project]
'use strict';

const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const grpc = require(path.join(root, 'tools/node_modules/@grpc/grpc-js'));
const protoLoader = require(path.join(root, 'tools/node_modules/@grpc/proto-loader'));

const definition = protoLoader.loadSync('posthog/v1/user.proto', {
  includeDirs: [path.join(root, 'proto'), '/usr/include'],
  keepCase: true,
  longs: String,
  defaults: true,
});
const { UserService } = grpc.loadPackageDefinition(definition).posthog.v1;

const target = process.argv[2] || 'localhost:50051';
const project = process.argv[3] || '';
const client = new UserService(target, grpc.credentials.createInsecure());
const deadline = new Date(Date.now() + 10000);
client.GetCurrentUser({ project }, { deadline }, (error, response) => {
  if (error) {
    console.error(`error: ${grpc.status[error.code]}: ${error.details}`);
    process.exit(1);
  }
  const user = response.user;
  console.log(`${user.first_name} ${user.last_name} <${user.email}>, ` +
    `project ${user.team.id} "${user.team.name}", ` +
    `organization "${user.organization.name}"`);
  client.close();
});
