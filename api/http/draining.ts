import type { Middleware } from 'koa';

/**
 * Whether the process is shutting down. Set once, first thing on SIGTERM, before the server stops
 * accepting: from then on readiness fails and every response closes its connection.
 */
export class Draining {
  #active = false;

  begin(): void {
    this.#active = true;
  }

  get active(): boolean {
    return this.#active;
  }
}

/**
 * While draining, every response says `Connection: close`: a client (or the ALB) holding a
 * keep-alive connection to this task sends its next request to another one, instead of to a task
 * that will cut the connection when the drain ends.
 */
export function closeConnectionsWhileDraining(draining: Draining): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } finally {
      if (draining.active) ctx.set('Connection', 'close');
    }
  };
}
