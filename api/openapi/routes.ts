import Router from '@koa/router';
import { openApiDocument } from './document.js';

/** `GET /openapi.json`: public, like any API reference; it describes routes, never data. */
export function openApiRoutes(): Router {
  const router = new Router();
  const document = openApiDocument();
  router.get('/openapi.json', (ctx) => {
    ctx.body = document;
  });
  return router;
}
