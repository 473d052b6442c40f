/**
 * Calls made in one turn of the event loop, handed to `send` together once the turn's I/O callbacks
 * have run (`setImmediate`): the requests that arrived in one poll of the sockets share one round
 * trip, one write and one wake-up of the server at the other end, where each would pay all three
 * alone; a call waits at most one turn for it. `send` answers the calls in their order; if it
 * fails, every call of the batch fails with its error.
 */
export function perTurn<A, R>(send: (batch: A[]) => Promise<R[]>): (arg: A) => Promise<R> {
  let waiting: { arg: A; resolve(result: R): void; reject(error: unknown): void }[] = [];
  const flush = () => {
    const batch = waiting;
    waiting = [];
    send(batch.map((call) => call.arg)).then(
      (results) => batch.forEach((call, i) => call.resolve(results[i]!)),
      (error: unknown) => batch.forEach((call) => call.reject(error)),
    );
  };
  return (arg) => new Promise<R>((resolve, reject) => {
    if (waiting.push({ arg, resolve, reject }) === 1) setImmediate(flush);
  });
}
