SELECT e.upd_dttm AS c0, e.visit_no AS c1, e.adm_dt AS c2, e.dsch_dt AS c3, e.visit_type AS c4, p.pt_guid AS c5, e.attend_dr AS c6, e.chief_cmplnt AS c7, e.dsch_disp AS c8, e.dept_cd AS c9, l.dept_nm AS c10, l.org_cd AS c11, 0 AS _b, e.visit_guid AS _id, e.adm_dt AS _k0 
FROM enc_visit AS e JOIN pt_master AS p ON e.pt_seq = p.pt_seq LEFT OUTER JOIN dept_loc AS l ON e.dept_cd = l.dept_cd 
WHERE (e.del_flg IS NULL OR NOT (e.del_flg = 'Y' AND (1 = 1))) AND (p.del_flg IS NULL OR NOT (p.del_flg = 'Y' AND (1 = 1))) AND (e.dsch_dt IS NOT NULL AND e.dsch_dt >= '0001-01-01 00:00:00' AND e.dsch_dt >= '2025-01-01 00:00:00' OR (e.dsch_dt IS NULL OR e.dsch_dt < '0001-01-01 00:00:00') AND e.adm_dt IS NOT NULL AND e.adm_dt >= '0001-01-01 00:00:00') ORDER BY e.adm_dt DESC, e.visit_guid 
 LIMIT 21
