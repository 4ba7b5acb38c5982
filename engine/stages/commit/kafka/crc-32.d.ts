// crc-32 ships types for its CRC-32 entry point only; its CRC-32C module has the same shape.
declare module 'crc-32/crc32c.js' {
  /** CRC-32C of the bytes, as a signed 32-bit integer. */
  export function buf(data: Uint8Array | number[], seed?: number): number;
}
