/**
 * `npm run plan -- --refresh-prices --region <region>`: re-reads every price of `region` in
 * infra/cost/prices.json from the AWS Price List API (`pricing:GetProducts`, credentials needed;
 * the estimate itself needs none) and writes the file with today's date. An entry whose query
 * matches no on-demand price, or several different ones, is left as it was and named, so a price
 * never silently turns into zero or into another product's.
 */
import { writeFileSync } from 'node:fs';
import { GetProductsCommand, PricingClient, type Filter } from '@aws-sdk/client-pricing';
import { PRICE_FILE, type PriceEntry, type PriceFile } from './estimate.js';

/** The Price List API answers in us-east-1 (also eu-central-1, ap-south-1), whatever region it prices. */
export const PRICING_API_REGION = 'us-east-1';

interface PriceListProduct {
  terms?: { OnDemand?: Record<string, { priceDimensions?: Record<string, { pricePerUnit?: { USD?: string } }> }> };
}

/** Every distinct non-zero on-demand USD price the products carry. */
function onDemandPrices(priceList: readonly string[]): Set<number> {
  const prices = new Set<number>();
  for (const item of priceList) {
    const product = JSON.parse(item) as PriceListProduct;
    for (const term of Object.values(product.terms?.OnDemand ?? {})) {
      for (const dimension of Object.values(term.priceDimensions ?? {})) {
        const usd = Number(dimension.pricePerUnit?.USD);
        if (Number.isFinite(usd) && usd > 0) prices.add(usd);
      }
    }
  }
  return prices;
}

async function priceOf(client: PricingClient, location: string, entry: PriceEntry): Promise<Set<number>> {
  const filters: Filter[] = [
    { Type: 'TERM_MATCH', Field: 'location', Value: location },
    ...Object.entries(entry.query.filters).map(([Field, Value]): Filter => ({ Type: 'TERM_MATCH', Field, Value })),
  ];
  const found = new Set<number>();
  let NextToken: string | undefined;
  do {
    const page = await client.send(new GetProductsCommand({ ServiceCode: entry.query.serviceCode, Filters: filters, FormatVersion: 'aws_v1', NextToken }));
    for (const usd of onDemandPrices(page.PriceList ?? [])) found.add(usd);
    NextToken = page.NextToken;
  } while (NextToken);
  return found;
}

export interface RefreshReport {
  changed: { id: string; from: number; to: number }[];
  unchanged: string[];
  /** Entries kept as they were: no match, or more than one price for the query. */
  unresolved: { id: string; found: number[] }[];
}

/** Refreshes `region`'s prices in `file` in place (nothing else of the file changes). */
export async function refreshPrices(file: PriceFile, region: string, client: PricingClient, today = new Date()): Promise<RefreshReport> {
  const regional = file.regions[region];
  if (!regional) throw new Error(`no region ${region} in the price file (regions: ${Object.keys(file.regions).join(', ')})`);
  const report: RefreshReport = { changed: [], unchanged: [], unresolved: [] };
  for (const [id, entry] of Object.entries(regional.prices)) {
    const found = [...(await priceOf(client, regional.location, entry))];
    if (found.length !== 1) {
      report.unresolved.push({ id, found });
      continue;
    }
    const [usd] = found as [number];
    if (usd === entry.usd) report.unchanged.push(id);
    else {
      report.changed.push({ id, from: entry.usd, to: usd });
      entry.usd = usd;
    }
  }
  file.takenOn = today.toISOString().slice(0, 10);
  return report;
}

/** The command: refresh, write the file, print what changed; exit 1 when anything is unresolved. */
export async function refreshPriceFile(file: PriceFile, region: string, client = new PricingClient({ region: PRICING_API_REGION })): Promise<number> {
  const report = await refreshPrices(file, region, client);
  writeFileSync(PRICE_FILE, `${JSON.stringify(file, null, 2)}\n`);
  for (const change of report.changed) process.stdout.write(`changed ${change.id}: ${change.from} -> ${change.to}\n`);
  process.stdout.write(`${report.changed.length} changed, ${report.unchanged.length} unchanged, ${report.unresolved.length} unresolved\n`);
  for (const item of report.unresolved) process.stdout.write(`UNRESOLVED ${item.id}: ${item.found.length === 0 ? 'no on-demand price matches its query' : `several prices (${item.found.join(', ')})`}; kept, fix its query\n`);
  return report.unresolved.length === 0 ? 0 : 1;
}
