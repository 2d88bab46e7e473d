/** Jest in native ESM mode: Nest 12 is ESM-only, so ts-jest runs with useESM. */
const esmTs = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151002] } }],
  },
  testEnvironment: 'node',
  setupFilesAfterEnv: ['<rootDir>/test/support/sqlite-error-per-suite.ts'],
};

export default {
  // testTimeout is a global option: Jest ignores it inside a project.
  testTimeout: 60000,
  globalSetup: '<rootDir>/test/support/global-setup.js',
  projects: [
    { ...esmTs, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/unit/**/*.spec.ts'] },
    {
      ...esmTs,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.spec.ts', '<rootDir>/test/e2e/**/*.spec.ts'],
    },
  ],
};
