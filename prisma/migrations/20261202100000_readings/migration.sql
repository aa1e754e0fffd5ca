-- CreateTable
CREATE TABLE "Reading" (
    "id" TEXT NOT NULL,
    "sensor" TEXT NOT NULL,
    "takenAt" TIMESTAMP(3) NOT NULL,
    "count" BIGINT NOT NULL,
    "amount" DECIMAL(12,4) NOT NULL,
    "raw" BYTEA,

    CONSTRAINT "Reading_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Reading_sensor_idx" ON "Reading"("sensor");

