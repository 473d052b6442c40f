import { openApiDocument } from './document.js';
import { anyone } from '../auth/access.js';
import { apiRouter, type ApiRouter } from '../http/router.js';

/** `GET /openapi.json`: public, like any API reference; it describes routes, never data. */
export function openApiRoutes(): ApiRouter {
  const router = apiRouter();
  const document = openApiDocument();
  router.get('/openapi.json', anyone(), (ctx) => {
    ctx.body = document;
  });
  return router;
}
