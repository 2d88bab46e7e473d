import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../data-source.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../config/config.js';
import { TransactionRunner } from './transaction-runner.js';

@Global()
@Module({
  providers: [
    {
      provide: DataSource,
      inject: [SLUICE_CONFIG],
      useFactory: async (config: SluiceConfig) => {
        const dataSource = createDataSource(config.database);
        await dataSource.initialize();
        const applied = await dataSource.runMigrations({ transaction: 'each' });
        if (applied.length > 0) {
          new Logger('Database').log(`applied ${applied.length} migration(s): ${applied.map((m) => m.name).join(', ')}`);
        }
        return dataSource;
      },
    },
    { provide: TransactionRunner, inject: [DataSource], useFactory: (ds: DataSource) => new TransactionRunner(ds) },
  ],
  exports: [DataSource, TransactionRunner],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
