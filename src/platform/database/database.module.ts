import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { createDataSource, createSqliteReader } from '../../data-source.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../config/config.js';
import { sqliteConnection } from './sql.js';
import { TransactionRunner } from './transaction-runner.js';
import { WalCheckpointer } from './wal-checkpointer.js';
import { WalSync } from './wal-sync.js';
import { shutdownSteps } from '../shutdown/shutdown-steps.js';

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
    {
      provide: TransactionRunner,
      inject: [DataSource, SLUICE_CONFIG],
      useFactory: async (dataSource: DataSource, config: SluiceConfig) => {
        if (config.database.type !== 'sqlite') return new TransactionRunner(dataSource);
        const reader = createSqliteReader(config.database.path);
        await reader.initialize();
        const checkpointer = await WalCheckpointer.start(config.database.path, sqliteConnection(dataSource)).catch((error: Error) => {
          new Logger('Database').error(`the WAL checkpoint worker did not start (${error.name}); the writer checkpoints for itself`);
          return undefined;
        });
        return new TransactionRunner(dataSource, reader, new WalSync(`${config.database.path}-wal`), checkpointer);
      },
    },
  ],
  exports: [DataSource, TransactionRunner],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await shutdownSteps.run('database: closing', async () => {
      await this.transactions.close();
      if (this.dataSource.isInitialized) await this.dataSource.destroy();
    });
  }
}
