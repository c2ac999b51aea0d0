SELECT q.upd_dttm AS c0, q.prob_stat AS c1, q.dx_codes AS c2, q.prob_desc AS c3, p.pt_guid AS c4, q.onset_dt AS c5, q.resolved_dt AS c6, q.entered_dt AS c7, 0 AS _b, q.prob_guid AS _id, q.entered_dt AS _k0 
FROM prob_list AS q INNER JOIN pt_master AS p ON q.pt_seq = p.pt_seq 
WHERE (q.del_flg IS NULL OR NOT (q.del_flg = 'Y' AND (binary(q.del_flg) = 'Y') = 1)) AND (p.del_flg IS NULL OR NOT (p.del_flg = 'Y' AND (binary(p.del_flg) = 'Y') = 1)) AND NOT (q.prob_stat IS NOT NULL AND q.prob_stat != '') ORDER BY q.entered_dt DESC, q.prob_guid 
 LIMIT 21
