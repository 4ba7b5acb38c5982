/*
 * The gRPC server: TransactionService, grpc.health.v1 and server reflection (so grpcurl and load
 * balancers work out of the box), with message size limits passed explicitly.
 */

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { messageBytesMax, type EngineConfig } from '../config.js';
import type { Pipeline } from '../pipeline.js';
import { SERVICE_NAME, TRANSACTION_PROTO, TransactionServiceDefinition } from './codec.js';
import { TransactionService } from './transaction-service.js';

export interface IngressServer {
  server: grpc.Server;
  port: number;
  service: TransactionService;
  health: HealthImplementation;
}

export async function startIngress(pipeline: Pipeline, config: EngineConfig): Promise<IngressServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': messageBytesMax(config),
    'grpc.max_send_message_length': messageBytesMax(config),
    'grpc.max_concurrent_streams': 1024,
  });
  const service = new TransactionService(pipeline, config);
  server.addService(TransactionServiceDefinition, service.handlers());
  const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  new ReflectionService(protoLoader.loadSync(TRANSACTION_PROTO, { keepCase: false })).addToServer(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${config.grpcHost}:${config.grpcPort}`, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error) reject(new Error(`cannot listen on ${config.grpcHost}:${config.grpcPort}: ${error.message}`));
      else resolve(bound);
    });
  });
  return { server, port, service, health };
}
