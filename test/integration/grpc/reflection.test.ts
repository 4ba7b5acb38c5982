// Proves that a client knowing nothing but the address can do what `grpcurl -plaintext ADDR
// grpc.health.v1.Health/Check` does: server reflection lists grpc.health.v1.Health next to the txe
// services, returns the file that declares it, and a Check built only from that reflected
// descriptor (no local copy of health.proto) answers SERVING. Over a real loopback socket.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine } from '../../support/engine.js';
import type { Engine } from '../../../engine/engine.js';

let engine: Engine;
let stop: () => Promise<void>;
let reflection: grpc.Client & { ServerReflectionInfo: () => grpc.ClientDuplexStream<object, ReflectionAnswer> };

interface ReflectionAnswer {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

beforeAll(async () => {
  ({ engine, stop } = await startTestEngine());
  const reflectionProto = path.join(path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto/grpc/reflection/v1/reflection.proto');
  const definition = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto)) as any;
  reflection = new definition.grpc.reflection.v1.ServerReflection(engine.address, grpc.credentials.createInsecure());
});
afterAll(async () => {
  reflection.close();
  await stop();
});

/** One request on a fresh ServerReflectionInfo stream, as grpcurl sends them. */
async function ask(request: object): Promise<ReflectionAnswer> {
  const call = reflection.ServerReflectionInfo();
  const answer = new Promise<ReflectionAnswer>((resolve, reject) => {
    call.once('data', resolve);
    call.once('error', reject);
  });
  call.write(request);
  call.end();
  return answer;
}

describe('server reflection', () => {
  it('lists grpc.health.v1.Health and every txe service', async () => {
    const answer = await ask({ listServices: '*' });
    const names = answer.listServicesResponse!.service.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining([
      'grpc.health.v1.Health', 'txe.v1.TransactionService', 'txe.v1.StatsService', 'txe.v1.ApprovalService', 'txe.v1.WebhookService',
    ]));
  });

  it('describes grpc.health.v1.Health well enough to call Check from the descriptor alone', async () => {
    const answer = await ask({ fileContainingSymbol: 'grpc.health.v1.Health' });
    expect(answer.errorResponse).toBeUndefined();
    const files = answer.fileDescriptorResponse!.fileDescriptorProto.map((bytes) => descriptor.FileDescriptorProto.decode(bytes));
    const root = (protobuf.Root as unknown as { fromDescriptor(set: object): protobuf.Root }).fromDescriptor({ file: files });
    const check = root.lookupService('grpc.health.v1.Health').methods.Check;
    check.resolve();
    const requestType = check.resolvedRequestType!;
    const responseType = check.resolvedResponseType!;

    const client = new grpc.Client(engine.address, grpc.credentials.createInsecure());
    try {
      const reply = await new Promise<protobuf.Message>((resolve, reject) => client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        (value: object) => Buffer.from(requestType.encode(requestType.fromObject(value)).finish()),
        (bytes: Buffer) => responseType.decode(bytes),
        { service: 'txe.v1.TransactionService' },
        (error, value) => (error ? reject(error) : resolve(value!)),
      ));
      expect(responseType.toObject(reply, { enums: String })).toEqual({ status: 'SERVING' });
    } finally {
      client.close();
    }
  });
});
