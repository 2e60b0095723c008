-- Attendance per person per week: meetings attended and hours in them.
SELECT user_id,
       max(participant_name) AS name,
       date(joined_at, 'weekday 0', '-6 days') AS week,
       count(DISTINCT meeting_no || '@' || meeting_start_time) AS meetings,
       round(sum(seconds_in_meeting) / 3600.0, 2) AS hours
FROM feishu_vc_participants
WHERE user_id IS NOT NULL
GROUP BY user_id, week
ORDER BY week, hours DESC, user_id;
