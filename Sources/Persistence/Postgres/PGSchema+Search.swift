// PostgreSQL schema version 11: search (PostgresStore+Search.swift), kept beside PGSchema.swift
// for its length. Append only, like the rest.
extension PGSchema {
    static let search = """
        -- Search: a message's terms as the hub computes them (SearchText: the same words as
        -- SQLite's index, whatever this server's locale) in a tsvector with a GIN index, so a
        -- query's terms match as prefixes (`'term':*`). NULL: nothing indexed (no word, sent
        -- with the index off, or deleted). hub_terms makes it from the space-separated terms.
        ALTER TABLE messages ADD COLUMN search_terms tsvector;
        CREATE INDEX messages_search ON messages USING gin (search_terms);
        CREATE FUNCTION hub_terms(p_terms text) RETURNS tsvector IMMUTABLE LANGUAGE sql
            AS $$ SELECT array_to_tsvector(string_to_array(NULLIF(p_terms, ''), ' ')) $$;
        -- hub_append of version 9, with the message's terms (p_terms) written in its insert.
        DROP FUNCTION hub_append(text, text, text, text, text, text, boolean, bigint, text, boolean, boolean);
        CREATE FUNCTION hub_append(p_service text, p_client text, p_sender text, p_role text, p_name text,
                                   p_text text, p_escaped boolean, p_ts bigint, p_cmid text,
                                   p_internal boolean, p_client_wrote boolean, p_terms text,
                                   OUT o_duplicate boolean, OUT o_conversation bigint, OUT o_id bigint, OUT o_seq bigint,
                                   OUT o_follows_others boolean, OUT o_service text, OUT o_client text,
                                   OUT o_role text, OUT o_name text, OUT o_text text, OUT o_escaped boolean, OUT o_ts bigint,
                                   OUT o_reopened boolean, OUT o_queued boolean)
        LANGUAGE plpgsql AS $$
        DECLARE
            v_last_sender text;
            v_created boolean := false;
            v_status text;
            v_cycle bigint;
            v_queued_at bigint;
            v_agent text;
            v_opens boolean;
        BEGIN
            o_reopened := false;
            o_queued := false;
            IF p_cmid IS NOT NULL THEN
                SELECT true, m.conversation_id, m.id, m.seq, false, c.service, c.client_id, m.sender_role, m.sender_name,
                       m.text, m.text_escaped, m.ts
                  INTO o_duplicate, o_conversation, o_id, o_seq, o_follows_others, o_service, o_client, o_role, o_name,
                       o_text, o_escaped, o_ts
                  FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.sender_id = p_sender AND m.client_msg_id = p_cmid;
                IF FOUND THEN RETURN; END IF;
            END IF;
            SELECT id, last_seq, last_sender, status, cycle_opened_at, queued_at
              INTO o_conversation, o_seq, v_last_sender, v_status, v_cycle, v_queued_at
              FROM conversations WHERE service = p_service AND client_id = p_client FOR UPDATE;
            IF NOT FOUND THEN
                INSERT INTO conversations (service, client_id) VALUES (p_service, p_client)
                    ON CONFLICT (service, client_id) DO NOTHING;
                v_created := FOUND;
                SELECT id, last_seq, last_sender, status, cycle_opened_at, queued_at
                  INTO o_conversation, o_seq, v_last_sender, v_status, v_cycle, v_queued_at
                  FROM conversations WHERE service = p_service AND client_id = p_client FOR UPDATE;
            END IF;
            INSERT INTO messages (conversation_id, seq, sender_id, sender_role, sender_name, text, text_escaped, ts,
                                  client_msg_id, internal, search_terms)
                VALUES (o_conversation, o_seq + 1, p_sender, p_role, p_name, p_text, p_escaped, p_ts, p_cmid, p_internal,
                        hub_terms(p_terms))
                ON CONFLICT (sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL DO NOTHING
                RETURNING id INTO o_id;
            IF o_id IS NULL THEN
                -- Created by this send, which stores nothing in it after all: it goes again.
                IF v_created THEN DELETE FROM conversations WHERE id = o_conversation; END IF;
                SELECT true, m.conversation_id, m.id, m.seq, false, c.service, c.client_id, m.sender_role, m.sender_name,
                       m.text, m.text_escaped, m.ts
                  INTO o_duplicate, o_conversation, o_id, o_seq, o_follows_others, o_service, o_client, o_role, o_name,
                       o_text, o_escaped, o_ts
                  FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.sender_id = p_sender AND m.client_msg_id = p_cmid;
                IF NOT FOUND THEN RAISE EXCEPTION 'a duplicate with no first message'; END IF;
                RETURN;
            END IF;
            o_seq := o_seq + 1;
            IF p_client_wrote THEN
                SELECT agent_id INTO v_agent FROM assignments WHERE service = p_service AND client_id = p_client;
                o_reopened := v_status = 'resolved';
                v_opens := v_cycle IS NULL;
                o_queued := v_queued_at IS NULL AND v_agent IS NULL;
            END IF;
            UPDATE conversations SET last_seq = o_seq, last_ts = p_ts, last_sender = p_sender,
                   status = CASE WHEN o_reopened THEN 'open' ELSE status END,
                   status_by = CASE WHEN o_reopened THEN p_sender ELSE status_by END,
                   status_at = CASE WHEN o_reopened THEN p_ts ELSE status_at END,
                   cycle_opened_at = CASE WHEN p_client_wrote THEN COALESCE(cycle_opened_at, p_ts) ELSE cycle_opened_at END,
                   queued_at = CASE WHEN o_queued THEN p_ts ELSE queued_at END
             WHERE id = o_conversation;
            IF v_opens THEN
                INSERT INTO desk_events (service, client_id, kind, agent, seq, ts) VALUES (p_service, p_client, 'opened', v_agent, o_seq, p_ts);
            END IF;
            IF o_queued THEN
                INSERT INTO desk_events (service, client_id, kind, ts) VALUES (p_service, p_client, 'queued', p_ts);
            END IF;
            o_duplicate := false;
            o_follows_others := COALESCE(v_last_sender <> p_sender, false);
            o_service := p_service; o_client := p_client; o_role := p_role; o_name := p_name;
            o_text := p_text; o_escaped := p_escaped; o_ts := p_ts;
        END $$;
        """
}
