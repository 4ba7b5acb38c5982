/*
 * grpc-js server credentials over TlsFiles: TLS 1.3 only, client certificates required when a
 * client CA is configured, and a new certificate taken into service when the files change.
 *
 * grpc-js's own FileWatcherCertificateProvider rotates too, but its context updates carry only
 * ca/cert/key, and Node's setSecureContext resets every option it is not given, so the TLS 1.3
 * minimum would fall back to 1.2 at the first rotation (and in 1.14.7
 * createCertificateProviderServerCredentials passes its providers swapped). This subclass hands
 * grpc-js complete contexts, minVersion included, on every update.
 */

import * as grpc from '@grpc/grpc-js';
import type { TlsFiles } from './tls-files.js';

/** Lives as long as its TlsFiles: once the engine closes them, no change reaches it. */
export class TlsServerCredentials extends grpc.ServerCredentials {
  constructor(files: TlsFiles) {
    super(files.serverOptions(), files.contextOptions());
    files.onChange((options) => this.updateSecureContextOptions(options));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}
