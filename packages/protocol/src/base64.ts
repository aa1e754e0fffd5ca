/**
 * Standard base64 (the wire's alphabet) for binary Loro data inside JSON. `btoa`/`atob` exist in
 * browsers and Node 16+; strings are built in chunks so a large snapshot does not overflow the
 * argument limit of `String.fromCharCode`.
 */
const CHUNK = 0x8000;

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
