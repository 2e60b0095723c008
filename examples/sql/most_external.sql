-- The meetings with the most external participants (PostgreSQL and SQLite alike).
SELECT m.meeting_no,
       m.meeting_topic,
       m.started_at,
       count(*) AS external_participants
FROM feishu_vc_participants AS p
JOIN feishu_vc_meetings AS m USING (tenant_key, meeting_no, meeting_start_time)
WHERE p.is_external
GROUP BY m.meeting_no, m.meeting_start_time, m.meeting_topic, m.started_at
ORDER BY external_participants DESC, m.started_at, m.meeting_no
LIMIT 10;
