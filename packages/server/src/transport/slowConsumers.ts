import type { WebSocket } from "ws";

export interface SlowConsumerWatchOptions {
  /** The sockets to watch (a `WebSocketServer`'s live `clients` set). */
  clients: ReadonlySet<WebSocket>;
  /** Bytes queued for one socket beyond which it is cut off. */
  limitBytes: number;
  /** How often to look, in ms. */
  intervalMs: number;
  /** Told about each socket just before it is terminated. */
  onSlow: (socket: WebSocket, bufferedBytes: number) => void;
}

/**
 * Cuts off WebSocket clients that stop reading.
 *
 * tRPC's WS adapter calls `socket.send()` for every subscription event and never waits for the
 * peer, so everything a stalled client does not read piles up in the socket's write buffer: one
 * client that stops reading (a frozen tab, a dead NAT mapping, a deliberate attack) would make the
 * server's memory grow without bound. Polling `bufferedAmount` is cheap (a property read per
 * socket) and catches that whatever produces the data.
 *
 * `terminate()`, not `close()`: a close frame would queue behind the very bytes the client is not
 * reading, and ws would then wait 30 s for the closing handshake while holding the buffer.
 * Returns a stop function. The timer is unref'd so it never keeps a process alive by itself.
 */
export function watchSlowConsumers(options: SlowConsumerWatchOptions): () => void {
  const timer = setInterval(() => {
    for (const socket of options.clients) {
      const buffered = socket.bufferedAmount;
      if (buffered > options.limitBytes) {
        options.onSlow(socket, buffered);
        socket.terminate();
      }
    }
  }, options.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
