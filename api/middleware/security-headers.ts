import type { Middleware } from 'koa';

/** A JSON API holding PHI: nothing is framed, sniffed, cached, or sent with a referrer. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Strict-Transport-Security': 'max-age=63072000; includeSubDomains',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  // Kept for the CORS origins too: CORP governs only no-cors loads (an <img> or <script> of another
  // page), never a CORS fetch, which CORS_ORIGINS decides (Fetch Standard, "cross-origin resource
  // policy check"; MDN Cross-Origin-Resource-Policy; the browser test fetches across origins with it).
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

export function securityHeaders(): Middleware {
  return async (ctx, next) => {
    ctx.set({ ...SECURITY_HEADERS });
    await next();
  };
}
