-- Client certificates (mTLS) as credentials: a token row known by the
-- verified certificate's subject common name instead of a secret. One live
-- credential per common name, so a certificate means one namespace and role.
ALTER TABLE tokens ADD COLUMN client_cert TEXT;
CREATE UNIQUE INDEX tokens_client_cert ON tokens (client_cert) WHERE revoked_at_ms IS NULL;
