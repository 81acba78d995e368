// A raw TCP client for what fetch cannot do: stay silent, send half a request, stall mid-body.
import { connect } from 'node:net';

/** The start of a JSON POST that promises a 100-byte body and sends 11 bytes of it. */
export const STALLED_UPLOAD = 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt":';

/** Connects; `received()` is what the server has sent so far, `closed` resolves when it hangs up. */
export async function rawClient(url: string) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let received = '';
  socket.on('data', (d) => (received += d));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', resolve).once('close', resolve));
  return { socket, closed, received: () => received };
}
