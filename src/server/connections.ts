// The server's open connections and whether each is carrying a request. Draining needs this: Node's
// server.close() waits for every socket, and a silent client or one that sent half its headers never
// ends on its own. A socket with no request in progress is closed as soon as draining starts; one
// carrying a request is closed when that response ends.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export class Connections {
  /** Socket -> requests in progress on it (HTTP/1.1 keeps at most one at a time). */
  private readonly sockets = new Map<Socket, number>();
  private closing = false;
  private emptyWaiters: (() => void)[] = [];

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.sockets.set(socket, 0);
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (this.sockets.size === 0) for (const w of this.emptyWaiters.splice(0)) w();
      });
    });
    server.on('request', (req, res) => {
      const socket = req.socket;
      this.sockets.set(socket, (this.sockets.get(socket) ?? 0) + 1);
      res.once('close', () => {
        const left = (this.sockets.get(socket) ?? 1) - 1;
        if (this.sockets.has(socket)) this.sockets.set(socket, left);
        // Ending (not destroying) lets the response's last bytes reach the client first.
        if (this.closing && left === 0) socket.end();
      });
    });
  }

  get open(): number {
    return this.sockets.size;
  }

  /** Connections with a request in progress (its headers are in; its body may not be). */
  get busy(): number {
    let n = 0;
    for (const requests of this.sockets.values()) if (requests > 0) n++;
    return n;
  }

  /** Closes every connection with no request in progress now, and each other one once its request ends. */
  closeIdle(): void {
    this.closing = true;
    for (const [socket, requests] of this.sockets) if (requests === 0) socket.destroy();
  }

  /** Ends every connection at once, whatever it is doing. */
  destroyAll(): void {
    for (const socket of this.sockets.keys()) socket.destroy();
  }

  /** Resolves true once no connection is open, or false after `ms`. */
  allClosedWithin(ms: number): Promise<boolean> {
    if (this.sockets.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (closed: boolean) => {
        clearTimeout(timer);
        this.emptyWaiters = this.emptyWaiters.filter((w) => w !== onEmpty);
        resolve(closed);
      };
      const onEmpty = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.emptyWaiters.push(onEmpty);
    });
  }
}
