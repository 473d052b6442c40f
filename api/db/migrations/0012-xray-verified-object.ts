import { Migration } from '@mikro-orm/migrations';

/**
 * What `complete` verified of an X-ray's object: its ETag and, in a versioned bucket, its version.
 * Downloads are bound to that object, so bytes written after verification are never served.
 */
export class XrayVerifiedObject extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table xrays add column verified_etag text, add column verified_version_id text');
  }

  override async down(): Promise<void> {
    this.addSql('alter table xrays drop column verified_etag, drop column verified_version_id');
  }
}
